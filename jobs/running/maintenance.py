"""process-jobs: keep every trigger moving and every started run ending (invariants 3 and 4)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from jobs.models import Job, JobRun
from jobs.models.jobs import WAITING_LANE
from jobs.running.chains import chains_release
from jobs.running.runner import run_abandon, run_resend, waiting_runs_promote
from jobs.scheduling.clock import db_now
from jobs.scheduling.schedules import SCHEDULE_ROWS
from jobs.scheduling.windows import WindowBook
from jobs.signals import lateness_changed, run_slow

Status = JobRun.Status
SWEEP_BATCH = 500
# Jobs per UPDATE when opening or closing late episodes (well under SQLite's parameter limit).
LATENESS_BATCH = 1000
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
    """Queued runs that are due and whose message never left, or left long ago and was lost. A run
    in the waiting lane has no message to send: the end of the active run starts it. A message sent
    with a countdown (a retry, a jittered run) is lost only if it was not taken long after its run's
    ``not_before``, not after it was sent."""
    never_sent = Q(dispatched_at__isnull=True, created_at__lt=now - timedelta(seconds=FRESH_RUN_SECONDS))
    long_ago = now - timedelta(seconds=settings.JOBS_REDISPATCH_AFTER_SECONDS)
    sent_long_ago = Q(dispatched_at__lt=long_ago) & (Q(not_before__isnull=True) | Q(not_before__lt=long_ago))
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    queued = JobRun.objects.filter(due, never_sent | sent_long_ago, status=Status.QUEUED).exclude(lane=WAITING_LANE)
    return queued.order_by("created_at")


def runs_to_reap(now: datetime) -> list[JobRun]:
    """Running runs whose heartbeat stopped, or that are past their timeout plus grace.

    At most one run per lane of a job can be running (invariant 1), so this reads a handful of rows.
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
    # Chained runs whose upstreams are done (or failed, or past the deadline): a release missed
    # at an upstream's end (its process died after commit) happens here.
    chained = chains_release(now=now)
    promoted = waiting_runs_promote(now=now)
    dispatched = failed = 0
    for run_id in runs_to_dispatch(now).values_list("pk", flat=True)[:SWEEP_BATCH]:
        if run_resend(run_id=run_id):
            dispatched += 1
        else:
            failed += 1
            if stop_on_dispatch_failure:
                break
    swept = {
        "abandoned": abandoned,
        "retried": retried,
        "dispatched": dispatched,
        "dispatch_failed": failed,
        "chains_released": chained["released"],
        "chains_failed": chained["failed"],
    }
    return {**swept, "waiting_started": promoted} if promoted else swept


def lateness_process(*, now: datetime) -> dict:
    """Open and close late episodes, announcing each change once.

    1. Every late job without an open episode, whose missed slot is in none of its blackout
       windows (``_held_by_windows``), gets ``late_since`` (its missed slot) by a
       conditional UPDATE; only the process whose UPDATE matched announces it.
    2. Every job with an open episode that is no longer late (it ran, or was disabled or
       rescheduled) has it closed.
    3. The changes of this pass are announced together (``jobs.signals.lateness_changed``), so
       a listener can tell one late job from ten thousand found late at once after downtime.

    Each step locks the rows it changes (``SKIP LOCKED``: rows another process is changing are
    its to announce) and changes them with a conditional UPDATE per thousand, so only the
    process that made a change announces it, and ten thousand jobs late after downtime cost a
    few statements rather than one each.
    """
    newly_late = Job.objects.late(now).filter(late_since__isnull=True)
    held = _held_by_windows(newly_late, now)
    started = _episodes_change(newly_late.exclude(pk__in=held), late_since=F("next_fire_at"), slot="next_fire_at")
    ended = _episodes_change(
        Job.objects.filter(late_since__isnull=False).exclude(enabled=True, late_at__lte=now),
        late_since=None,
        slot="late_since",
    )
    if started or ended:
        transaction.on_commit(
            lambda: lateness_changed.send(sender=Job, started=started, ended=ended, now=now), robust=True
        )
    return {"late": Job.objects.late(now).count(), "late_started": len(started), "late_recovered": len(ended)}


def _episodes_change(jobs, *, late_since, slot: str) -> list[tuple[Job, datetime]]:
    """Lock ``jobs`` (skipping rows another process holds), set their ``late_since``, and return
    each with its slot as read before the change. The alerts name each job's schedule: its
    task's rows come with it."""
    with transaction.atomic():
        locked = list(jobs.select_related(*SCHEDULE_ROWS).select_for_update(skip_locked=True, of=("self",)))
        changes = [(job, getattr(job, slot)) for job in locked]
        for start in range(0, len(locked), LATENESS_BATCH):
            ids = [job.pk for job in locked[start : start + LATENESS_BATCH]]
            Job.objects.filter(pk__in=ids, late_since__isnull=late_since is not None).update(late_since=late_since)
    for job, slot_value in changes:
        job.late_since = slot_value if late_since is not None else None
    return changes


def _held_by_windows(jobs, now: datetime) -> set[int]:
    """The jobs of the queryset ``jobs`` whose missed slot lies in one of their blackout windows
    (beat or the database was down for the maintenance the window announced): the slot will be
    skipped or deferred there once beat books it, so it opens no late episode and sends no
    alert. Without windows nothing is read."""
    windows = WindowBook.load(now)
    if not windows.windows:
        return set()
    late = list(jobs.select_related(*SCHEDULE_ROWS))  # a job's timezone lives in its schedule rows
    windows.attach(late)
    return {job.pk for job in late if windows.holding(job, job.next_fire_at) is not None}


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
