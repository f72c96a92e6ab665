"""A running run proves its process is alive by touching ``heartbeat_at``.

The reaper abandons a running run whose heartbeat went silent: that is how a SIGKILLed
worker is noticed long before the job's timeout. One daemon thread per process beats for
every run this process is executing (a prefork child runs one at a time); starting a
thread per run cost a third of a no-op run's bookkeeping. It beats from the claim until the
outcome is recorded, and outlives a database restart: on any error it drops its connection
and reconnects on the next beat, since a dead thread would get its live runs reaped.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager

from django.conf import settings
from django.utils import timezone

from core.db_recovery import connections_drop

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_running: set[int] = set()
_thread: threading.Thread | None = None
_thread_pid: int | None = None


def _beat_forever() -> None:
    from jobs.models import JobRun

    while True:
        threading.Event().wait(settings.JOBS_HEARTBEAT_SECONDS)
        with _lock:
            run_ids = list(_running)
        if not run_ids:
            connections_drop()  # idle: hold no connection of this thread's own
            continue
        try:
            JobRun.objects.filter(pk__in=run_ids, status=JobRun.Status.RUNNING).update(heartbeat_at=timezone.now())
        except Exception as exc:  # the database away (restart, failover) or anything else: beat on
            logger.warning("heartbeat not written (%s); reconnecting on the next beat", type(exc).__name__)
            connections_drop()


def _ensure_thread() -> None:
    global _thread, _thread_pid
    # A forked child inherits the module state but not the thread: start its own.
    if _thread is None or _thread_pid != os.getpid() or not _thread.is_alive():
        _running.clear()
        _thread = threading.Thread(target=_beat_forever, name="run-heartbeat", daemon=True)
        _thread_pid = os.getpid()
        _thread.start()


@contextmanager
def run_heartbeat(run_id: int):
    with _lock:
        _ensure_thread()
        _running.add(run_id)
    try:
        yield
    finally:
        with _lock:
            _running.discard(run_id)
