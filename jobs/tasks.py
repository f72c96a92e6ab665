"""Celery adapters: take ids, call the runner; and the worker's stop (its grace for runs)."""

from __future__ import annotations

import logging
import threading

from celery import shared_task
from django.conf import settings

from jobs.running import runner
from jobs.running.process_tree import descendants, processes_end

logger = logging.getLogger(__name__)
# Seconds a pool process told to stop has to record its run's outcome before SIGKILL.
STOP_RECORD_SECONDS = 10.0
# The worker this process runs (celeryd_after_setup), for its embedded beat at shutdown.
this_worker: list = []


@shared_task(name=runner.EXECUTE_TASK, ignore_result=True)
def execute_run(run_id: int) -> None:
    runner.run_execute(run_id)


@shared_task(name="jobs.tasks.trigger_scheduled_job", ignore_result=True)
def trigger_scheduled_job(job_id: int, fired_at: str | None = None) -> None:
    """The task a job's PeriodicTask names. Cronhouse's beat never sends it (it records due slots
    itself, jobs.scheduling.firing); a plain django-celery-beat that does gets every due slot recorded by
    the same code, each once."""
    from jobs.scheduling.firing import due_jobs_fire

    due_jobs_fire()


def worker_children_stop() -> None:
    """End every process the worker started (pool processes, embedded beat, what runs started).

    A pool process running a run takes SIGTERM as the end of its run: it ends the run's own
    processes and records the run ``abandoned`` (jobs.running.execution), then exits.
    """
    children = descendants()
    if children:
        logger.warning("worker: stop grace over; ending %d process(es) still running", len(children))
        processes_end(children, grace=STOP_RECORD_SECONDS)


def worker_remember(sender=None, instance=None, **kwargs) -> None:
    this_worker[:] = [instance]


def embedded_beat_stop() -> None:
    """Stop ``worker --beat``'s beat now. Celery stops it only once the pool has drained, and
    meanwhile it would book runs this worker no longer takes. Stopped, it gives up the leader
    lease (jobs.scheduling.beat), so another beat, or the next start, leads at once."""
    beat = getattr(this_worker[0], "beat", None) if this_worker else None
    if beat is not None:
        beat.stop()


def stop_grace_start(sender=None, sig=None, how=None, exitcode=None, **kwargs) -> None:
    """Celery's warm shutdown (SIGTERM, Ctrl-C) waits for running tasks however long they take;
    a run is given JOBS_STOP_GRACE_SECONDS, then stopped, so a stop always ends."""
    grace = settings.JOBS_STOP_GRACE_SECONDS
    logger.info("worker: stopping (%s); runs in flight have %s s to end", sig, grace)
    embedded_beat_stop()
    timer = threading.Timer(grace, worker_children_stop)
    timer.daemon = True
    timer.start()
