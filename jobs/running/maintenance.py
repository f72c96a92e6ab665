"""process-jobs: keep every trigger moving and every started run ending (invariants 3 and 4)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from jobs.models import Job, JobRun
from jobs.running.runner import run_abandon, run_resend
from jobs.scheduling.clock import db_now
from jobs.scheduling.schedules import SCHEDULE_ROWS
from jobs.signals import job_lateness_changed, run_slow

Status = JobRun.Status
SWEEP_BATCH = 500
# A run committed this recently may still have its on-commit publish in flight.
FRESH_RUN_SECONDS = 5
# The leader's re-send sweep while the broker is away: after 1, 2, 4, then every 5 s.
DISPATCH_RETRY_FIRST_SECONDS = 1.0
DISPATCH_RETRY_MAX_SECONDS = 5.0


class DispatchBackoff:
    """How long the leader waits before its next sweep. While publishing fails (the broker is
    away) it retries soon, doubling from DISPATCH_RETRY_FIRST_SECONDS to at most
    DISPATCH_RETRY_MAX_SECONDS: queued runs go out within seconds of the broker's return, and a
    broker that stays away costs one failed publish (``stop_on_dispatch_failure``) every few
    seconds. Once a sweep publishes again it is back to the housekeeping period."""

    def __init__(self) -> None:
        self.failures = 0

    def after(self, *, failed: bool) -> float:
        if not failed:
            self.failures = 0
            return settings.JOBS_BEAT_HEARTBEAT_SECONDS
        delay = min(DISPATCH_RETRY_FIRST_SECONDS * 2**self.failures, DISPATCH_RETRY_MAX_SECONDS)
        self.failures += 1
        return delay


def runs_to_dispatch(now: datetime):
    """Queued runs that are due and whose message never left, or left long ago and was lost.
    A message sent with a countdown (a retry, a jittered run) is lost only if it was not taken
    long after its run's ``not_before``, not after it was sent."""
    never_sent = Q(dispatched_at__isnull=True, created_at__lt=now - timedelta(seconds=FRESH_RUN_SECONDS))
    long_ago = now - timedelta(seconds=settings.JOBS_REDISPATCH_AFTER_SECONDS)
    sent_long_ago = Q(dispatched_at__lt=long_ago) & (Q(not_before__isnull=True) | Q(not_before__lt=long_ago))
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
    """Reap and dispatch (``runs_sweep``), then late episodes and slow runs, by the database's
    clock (``jobs.scheduling.clock``) unless ``now`` is given."""
    now = now or db_now()
    swept = runs_sweep(now=now)
    late = lateness_process(now=now)
    slow = slow_runs_process(now=now)
    return {**swept, **late, "slow_flagged": slow}


def runs_sweep(*, now: datetime, stop_on_dispatch_failure: bool = False) -> dict:
    """Reap dead runs first (freeing their jobs and creating retries), then dispatch.

    process-jobs runs this every minute, and the leading beat every few seconds: process-jobs'
    own run can lose its message or its worker like any other, and nothing else would then
    re-send or reap it (its next ticks are skipped while it is active). Both doing it is safe:
    abandoning and claiming are conditional UPDATEs, and a duplicate message finds nothing
    to claim. ``stop_on_dispatch_failure``: give up at the first failed publish (broker away)
    instead of paying the connection timeout once per queued run.
    """
    abandoned = retried = 0
    for run in runs_to_reap(now)[:SWEEP_BATCH]:
        ended = run_abandon(run=run, reason=_reap_reason(run, now))
        if ended is not None:
            abandoned += 1
            retried += int(hasattr(ended, "retried_by"))
    dispatched = failed = 0
    for run_id in runs_to_dispatch(now).values_list("pk", flat=True)[:SWEEP_BATCH]:
        if run_resend(run_id=run_id):
            dispatched += 1
        else:
            failed += 1
            if stop_on_dispatch_failure:
                break
    return {"abandoned": abandoned, "retried": retried, "dispatched": dispatched, "dispatch_failed": failed}


def _announce_lateness(job: Job, *, late: bool, slot, now: datetime) -> None:
    transaction.on_commit(lambda: job_lateness_changed.send(sender=Job, job=job, late=late, slot=slot, now=now))


def lateness_process(*, now: datetime) -> dict:
    """Open and close late episodes, announcing each change once.

    1. Every late job without an open episode gets ``late_since`` (its missed slot) by a
       conditional UPDATE; only the process whose UPDATE matched announces it.
    2. Every job with an open episode that is no longer late (it ran, or was disabled or
       rescheduled) has it closed the same way, and the recovery is announced.
    """
    # The alerts name each job's schedule: its task's rows come with it.
    late = {job.pk: (job, job.next_fire_at) for job in Job.objects.late(now).select_related(*SCHEDULE_ROWS)}
    started = recovered = 0
    for job, slot in late.values():
        if job.late_since is None and Job.objects.filter(pk=job.pk, late_since__isnull=True).update(late_since=slot):
            job.late_since = slot
            _announce_lateness(job, late=True, slot=slot, now=now)
            started += 1
    for job in Job.objects.filter(late_since__isnull=False).exclude(pk__in=list(late)):
        if Job.objects.filter(pk=job.pk, late_since=job.late_since).update(late_since=None):
            _announce_lateness(job, late=False, slot=job.late_since, now=now)
            recovered += 1
    return {"late": len(late), "late_started": started, "late_recovered": recovered}


def slow_runs_process(*, now: datetime) -> int:
    """Flag running runs that passed their job's expected duration, and announce each once."""
    candidates = JobRun.objects.filter(
        status=Status.RUNNING, slow=False, job__expected_duration_seconds__isnull=False
    ).select_related("job")
    flagged = 0
    for run in candidates:
        limit = run.started_at + timedelta(seconds=run.job.expected_duration_seconds)
        if limit < now and JobRun.objects.filter(pk=run.pk, slow=False).update(slow=True):
            run.slow = True
            transaction.on_commit(lambda run=run: run_slow.send(sender=JobRun, run=run))
            flagged += 1
    return flagged
