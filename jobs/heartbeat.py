"""A running run proves its process is alive by touching ``heartbeat_at``.

The reaper abandons a running run whose heartbeat went silent: that is how a SIGKILLed
worker is noticed long before the job's timeout.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone


@contextmanager
def run_heartbeat(run_id: int):
    stop = threading.Event()

    def beat() -> None:
        from .models import JobRun

        try:
            while not stop.wait(settings.JOBS_HEARTBEAT_SECONDS):
                try:
                    JobRun.objects.filter(pk=run_id, status=JobRun.Status.RUNNING).update(heartbeat_at=timezone.now())
                except DatabaseError:
                    pass  # database briefly away: the next beat tries again
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"run-{run_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
