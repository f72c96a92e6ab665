"""process-jobs: keep every trigger moving and every started run ending (invariants 3 and 4)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import JobRun
from .runner import run_abandon, run_dispatch

Status = JobRun.Status
SWEEP_BATCH = 500
# A run committed this recently may still have its on-commit publish in flight.
FRESH_RUN_SECONDS = 5


def runs_to_dispatch(now: datetime):
    """Queued runs that are due and whose message never left, or left long ago and was lost."""
    never_sent = Q(dispatched_at__isnull=True, created_at__lt=now - timedelta(seconds=FRESH_RUN_SECONDS))
    sent_long_ago = Q(dispatched_at__lt=now - timedelta(seconds=settings.JOBS_REDISPATCH_AFTER_SECONDS))
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    return JobRun.objects.filter(due, never_sent | sent_long_ago, status=Status.QUEUED).order_by("created_at")


def runs_to_reap(now: datetime) -> list[JobRun]:
    """Running runs whose heartbeat stopped, or that are past their timeout plus grace.

    At most one run per job can be running (invariant 1), so this reads a handful of rows.
    """
    silent_since = now - timedelta(seconds=settings.JOBS_HEARTBEAT_TIMEOUT_SECONDS)
    grace = timedelta(seconds=settings.JOBS_REAPER_GRACE_SECONDS)
    return [
        run
        for run in JobRun.objects.filter(status=Status.RUNNING).select_related("job")
        if (run.heartbeat_at and run.heartbeat_at < silent_since)
        or (run.started_at and run.started_at + timedelta(seconds=run.job.timeout_seconds) + grace < now)
    ]


def _reap_reason(run: JobRun, now: datetime) -> str:
    limit = run.started_at + timedelta(seconds=run.job.timeout_seconds + settings.JOBS_REAPER_GRACE_SECONDS)
    if now > limit:
        return (
            f"Abandoned: still running {int((now - run.started_at).total_seconds())} s after start, past the "
            f"job's timeout ({run.job.timeout_seconds} s) plus grace ({settings.JOBS_REAPER_GRACE_SECONDS} s)."
        )
    return (
        f"Abandoned: worker {run.worker_host or '?'} (pid {run.worker_pid or '?'}) stopped sending heartbeats "
        f"at {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC; its process is gone."
    )


def jobs_process(*, now: datetime | None = None) -> dict:
    """Reap dead runs first (freeing their jobs and creating retries), then dispatch."""
    now = now or timezone.now()
    abandoned = retried = 0
    for run in runs_to_reap(now)[:SWEEP_BATCH]:
        ended = run_abandon(run=run, reason=_reap_reason(run, now))
        if ended is not None:
            abandoned += 1
            retried += int(hasattr(ended, "retried_by"))
    dispatched = failed = 0
    for run_id in runs_to_dispatch(now).values_list("pk", flat=True)[:SWEEP_BATCH]:
        if run_dispatch(run_id=run_id):
            dispatched += 1
        else:
            failed += 1
    return {"abandoned": abandoned, "retried": retried, "dispatched": dispatched, "dispatch_failed": failed}
