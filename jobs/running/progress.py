"""How far a running run has got: ``JobCommand.progress`` counts items and writes done / total
to the run the command runs for, and the dashboard and run JSON show it with the time left.

``command_execute`` names the run in ``current_run_id`` for the command's call; outside a run
(``manage.py`` by hand) nothing is written. A write is a conditional UPDATE of a running run,
at most once per ``WRITE_EVERY_SECONDS`` plus one at the end, so a fast loop costs no queries
per item. Inside the job's own transaction nothing is written: the row lock it would take
blocks the heartbeat thread until that transaction ends, and nobody could see it before then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from django.db import DatabaseError, transaction

logger = logging.getLogger(__name__)

WRITE_EVERY_SECONDS = 1.0
current_run_id: ContextVar[int | None] = ContextVar("jobs_current_run_id", default=None)
# Runs of this process someone asked to cancel: the heartbeat thread reads the requests from the
# database (jobs.running.heartbeat) and the command sees them here at its next progress step or
# ``JobCommand.cancel_check()``, without a query of its own.
cancel_requests: set[int] = set()


class RunCancelled(BaseException):
    """Someone cancelled the run this command does. A BaseException, like KeyboardInterrupt: a
    command's own ``except Exception`` does not swallow it, and every ``atomic`` block it
    leaves rolls back."""


def cancel_check(run_id: int | None = None) -> None:
    """Raise RunCancelled if the run (the one this command runs for, by default) was cancelled."""
    run_id = current_run_id.get() if run_id is None else run_id
    if run_id is not None and run_id in cancel_requests:
        raise RunCancelled(f"run {run_id} was cancelled")


@contextmanager
def run_context(run_id: int | None):
    """The command called inside reports its progress to run ``run_id``."""
    token = current_run_id.set(run_id)
    try:
        yield
    finally:
        current_run_id.reset(token)


def progress_write(*, run_id: int, done: int, total: int | None) -> bool:
    """Record done / total on the run while it is running; False if not written. Never raises:
    a progress report must not fail the job it reports on."""
    from jobs.models import JobRun

    if transaction.get_connection().in_atomic_block:
        return False
    try:
        rows = JobRun.objects.filter(pk=run_id, status=JobRun.Status.RUNNING)
        return bool(rows.update(progress_done=done, progress_total=total))
    except DatabaseError as exc:
        logger.warning("progress of run %s not written (%s)", run_id, type(exc).__name__)
        return False


class ProgressReported:
    """A tqdm bar that also writes how far it got to run ``run_id``: iterate it, or advance it with
    ``update(n)`` as a job that works in batches does, and ``close()`` it (a plain bar's API)."""

    def __init__(self, bar, *, run_id: int, total: int | None) -> None:
        self.bar, self.run_id, self.total = bar, run_id, total
        self.done = 0
        self.written_at = time.monotonic()
        cancel_check(run_id)
        progress_write(run_id=run_id, done=0, total=total)

    def __iter__(self) -> Iterator:
        for item in self.bar:
            yield item
            self._advanced(1)
        self._write()

    def update(self, n: int = 1) -> None:
        self.bar.update(n)
        self._advanced(n)

    def close(self) -> None:
        self.bar.close()
        self._write()

    def _advanced(self, n: int) -> None:
        cancel_check(self.run_id)
        self.done += n
        if time.monotonic() - self.written_at >= WRITE_EVERY_SECONDS:
            self._write()

    def _write(self) -> None:
        progress_write(run_id=self.run_id, done=self.done, total=self.total)
        self.written_at = time.monotonic()


def progress_json(run, now: datetime) -> dict | None:
    """done, total, percent and the seconds left (at the pace since the run started, None while
    unknown) of a run that reported progress; None for one that did not."""
    if run.progress_done is None:
        return None
    done, total = run.progress_done, run.progress_total
    percent = eta = None
    if total:
        percent = min(100, round(100 * done / total))
        if done and run.started_at and run.status == "running":
            elapsed = (now - run.started_at).total_seconds()
            eta = max(0, round(elapsed * (total - done) / done))
    return {"done": done, "total": total, "percent": percent, "eta_seconds": eta}
