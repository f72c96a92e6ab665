"""A running run proves its process is alive by touching ``heartbeat_at``.

The reaper abandons a running run whose heartbeat went silent: that is how a SIGKILLed
worker is noticed long before the job's timeout. One daemon thread per process beats for
every run this process is executing (a prefork child runs one at a time); starting a
thread per run cost a third of a no-op run's bookkeeping. It beats from the claim until the
outcome is recorded, and outlives a database restart: on any error it drops its connection
and reconnects on the next beat, since a dead thread would get its live runs reaped.

It also watches for cancels: a run someone cancelled is marked for its command
(``jobs.running.progress.cancel_requests``), and one still running JOBS_CANCEL_GRACE_SECONDS
after the beat that first saw the request is ended by the action its runner gave
(``run_heartbeat(on_overdue=...)``: end its processes, record it, stop the command).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

from django.conf import settings
from django.utils import timezone

from core.db_recovery import connections_drop
from jobs.running.progress import cancel_requests

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_running: set[int] = set()
_thread: threading.Thread | None = None
_thread_pid: int | None = None
# Per run: what ends it when a cancel's grace is over, and when this process first saw the cancel.
_on_overdue: dict[int, Callable[[], None]] = {}
_cancel_seen: dict[int, float] = {}


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
            running = JobRun.objects.filter(pk__in=run_ids, status=JobRun.Status.RUNNING)
            running.update(heartbeat_at=timezone.now())
            cancelled = list(running.filter(cancel_requested_at__isnull=False).values_list("pk", flat=True))
        except Exception as exc:  # the database away (restart, failover) or anything else: beat on
            logger.warning("heartbeat not written (%s); reconnecting on the next beat", type(exc).__name__)
            connections_drop()
            continue
        for run_id in cancelled:
            _cancel_follow(run_id)


def _cancel_follow(run_id: int) -> None:
    """Tell the command; past the grace, end the run by its runner's action (once)."""
    cancel_requests.add(run_id)
    seen = _cancel_seen.setdefault(run_id, time.monotonic())
    if time.monotonic() - seen < settings.JOBS_CANCEL_GRACE_SECONDS:
        return
    with _lock:
        action = _on_overdue.pop(run_id, None)
    if action is None:
        return
    grace = settings.JOBS_CANCEL_GRACE_SECONDS
    logger.warning("run %s did not stop within %s s of its cancel: ending it", run_id, grace)
    try:
        action()
    except Exception:
        logger.exception("ending cancelled run %s failed; the reaper will end it", run_id)


def _ensure_thread() -> None:
    global _thread, _thread_pid
    # A forked child inherits the module state but not the thread: start its own.
    if _thread is None or _thread_pid != os.getpid() or not _thread.is_alive():
        _running.clear()
        _on_overdue.clear()
        _cancel_seen.clear()
        _thread = threading.Thread(target=_beat_forever, name="run-heartbeat", daemon=True)
        _thread_pid = os.getpid()
        _thread.start()


@contextmanager
def run_heartbeat(run_id: int, *, on_overdue: Callable[[], None] | None = None):
    """Beat for ``run_id`` while the block runs; ``on_overdue`` ends the run if it outlives a
    cancel's grace."""
    with _lock:
        _ensure_thread()
        _running.add(run_id)
        if on_overdue is not None:
            _on_overdue[run_id] = on_overdue
    try:
        yield
    finally:
        with _lock:
            _running.discard(run_id)
            _on_overdue.pop(run_id, None)
            _cancel_seen.pop(run_id, None)
            cancel_requests.discard(run_id)
