"""Chains: a job that waits, for each slot, until the jobs it waits on (``JobDependency``) have
succeeded for the same period. docs/operations.md, "Chains".

**The period.** A downstream run's period is the span of its own schedule that ends at its slot:
after the downstream's previous slot, up to and including its slot. An upstream run belongs to
it when the upstream's slot (its ``scheduled_for``, or the ``as_of`` of a backfill's run) falls
in that span. generate-statements at ``0 8 1 * *`` waiting on generate-charges at ``0 6 1 * *``:
the statements of March 1 08:00 wait for the charges of March 1 06:00 (after February 1 08:00).

**The run.** beat, catch-up and backfills record a chained job's slot as a ``waiting`` run
(``jobs.running.runner.runs_book``): not active, so it holds no worker and does not keep the
job from recording its later slots. Each waiting run, oldest first per job, is looked at when
one of its upstreams' runs (or one of its own) ends (``chains_on_run_finished``) and by every
sweep (process-jobs and the leader, ``jobs.running.maintenance.runs_sweep``), so none is lost:

* every upstream has a succeeded run for the period: waiting -> queued, then sent;
* an upstream's run for the period failed and nothing of it is still active: waiting -> failed,
  the reason naming the upstream and its run;
* an upstream's slot for the period was skipped by a blackout window: waiting -> skipped, naming
  the window (no alert);
* its job was paused meanwhile: waiting -> skipped ("job is paused");
* otherwise it keeps waiting, until ``Job.chain_deadline_seconds`` after it was recorded, and
  then fails naming the upstream that never succeeded.

Each change is a conditional UPDATE on ``status = 'waiting'``; the release also meets the one
active run per job constraint, and waits while another run of the job is active. A job's
waiting runs are released in slot order, one at a time, so a backfilled chain runs month by month.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jobs.models import Job, JobDependency, JobRun
from jobs.running.runner import run_end_waiting, runs_publish
from jobs.scheduling.cron import last_slot
from jobs.scheduling.schedules import SCHEDULE_ROWS

logger = logging.getLogger(__name__)
Status = JobRun.Status
RELEASE_BATCH = 500
SUCCEEDED, PENDING, FAILED, WINDOW_SKIPPED, MISSING = "succeeded", "pending", "failed", "window", "missing"


def run_slot(run: JobRun) -> datetime | None:
    """The slot a run does the work of: its schedule slot, or a backfill's ``as_of``."""
    if run.scheduled_for is not None:
        return run.scheduled_for
    as_of = (run.options or {}).get("as_of")
    return parse_datetime(as_of) if isinstance(as_of, str) else None


def chain_period(job: Job, slot: datetime) -> tuple[datetime | None, datetime]:
    """(after, up to and including): the downstream job's period that ends at ``slot``."""
    before = last_slot(job.cron_expression, job.interval_seconds, job.timezone, slot - timedelta(microseconds=1))
    return before, slot


def chains_release(*, now: datetime, job_ids: set[int] | None = None, deadlines: bool = True) -> dict:
    """Look at the waiting runs (of ``job_ids`` only, when given), oldest first per job.
    ``deadlines``: also fail the runs past their deadline (the sweep's part, on the database's
    clock; a release at an upstream's end only releases or fails on that upstream's outcome)."""
    waiting = JobRun.objects.filter(status=Status.WAITING)
    if job_ids is not None:
        waiting = waiting.filter(job_id__in=job_ids)
    runs = list(
        waiting.select_related("job", *(f"job__{row}" for row in SCHEDULE_ROWS)).order_by("job_id", "created_at", "id")[
            :RELEASE_BATCH
        ]
    )
    by_job: dict[int, list[JobRun]] = defaultdict(list)
    for run in runs:
        by_job[run.job_id].append(run)
    counts = {"released": 0, "failed": 0, "skipped": 0}
    for job_runs in by_job.values():
        for run in sorted(job_runs, key=lambda run: (run_slot(run) or run.created_at, run.pk)):
            outcome = _look_at(run, now, deadlines)
            if outcome in counts:
                counts[outcome] += 1
            if outcome not in ("failed", "skipped"):
                break  # released or still waiting: the job's later slots wait their turn
    return counts


def _look_at(run: JobRun, now: datetime, deadlines: bool) -> str:
    if not run.job.enabled:
        # Paused while it waited: it never runs, as a slot of a paused job is recorded.
        ended = run_end_waiting(run=run, status=Status.SKIPPED, now=now, skip_reason="job is paused")
        return "skipped" if ended else "gone"
    upstreams = dict(
        JobDependency.objects.filter(job_id=run.job_id).values_list("upstream_id", "upstream__name").order_by("pk")
    )
    slot = run_slot(run)
    if slot is None or not upstreams:
        return _release(run, now)
    after, until = chain_period(run.job, slot)
    states = _upstream_states(upstreams, after, until)
    span = f"the period {'' if after is None else f'{after:%Y-%m-%d %H:%M} '}to {until:%Y-%m-%d %H:%M} UTC"
    for upstream_id, name in upstreams.items():
        state, about = states.get(upstream_id, (MISSING, None))
        if state == FAILED:
            reason = f"Chain: upstream {name} failed for {span} (run #{about.pk}: {about.status}); not run."
            return "failed" if run_end_waiting(run=run, status=Status.FAILED, now=now, error=reason) else "gone"
        if state == WINDOW_SKIPPED:
            reason = f"upstream {name} skipped in blackout window {about.window_name!r}"
            ended = run_end_waiting(
                run=run, status=Status.SKIPPED, now=now, skip_reason=reason, window_name=about.window_name
            )
            return "skipped" if ended else "gone"
    missing = [name for upstream_id, name in upstreams.items() if states.get(upstream_id, (MISSING,))[0] != SUCCEEDED]
    if not missing:
        return _release(run, now)
    deadline = timedelta(seconds=run.job.chain_deadline_seconds)
    if deadlines and now - run.created_at >= deadline:
        reason = (
            f"Chain: {', '.join(missing)} did not succeed for {span} within "
            f"{int(deadline.total_seconds())} s of this run waiting; not run."
        )
        return "failed" if run_end_waiting(run=run, status=Status.FAILED, now=now, error=reason) else "gone"
    return "waiting"


def _upstream_states(upstreams: dict[int, str], after: datetime | None, until: datetime) -> dict[int, tuple]:
    """Per upstream job, its state for the period (``after``, ``until``] and the run that says so."""
    in_period = Q(scheduled_for__lte=until)
    as_of_runs = Q(scheduled_for__isnull=True, options__has_key="as_of")
    if after is not None:
        in_period &= Q(scheduled_for__gt=after)
        as_of_runs &= Q(created_at__gt=after)
    candidates = JobRun.objects.filter(in_period | as_of_runs, job_id__in=list(upstreams))
    runs = [
        run
        for run in candidates.order_by("created_at", "id")
        if (slot := run_slot(run)) is not None and slot <= until and (after is None or slot > after)
    ]
    rank = {SUCCEEDED: 4, PENDING: 3, FAILED: 2, WINDOW_SKIPPED: 1}
    states: dict[int, tuple] = {}
    for run in runs:
        if run.status == Status.SUCCEEDED:
            state = SUCCEEDED
        elif run.status in (*JobRun.ACTIVE_STATUSES, Status.WAITING):
            state = PENDING
        elif run.status in JobRun.FAILURE_STATUSES:
            state = FAILED
        elif run.status == Status.SKIPPED and run.window_name:
            state = WINDOW_SKIPPED
        else:
            continue  # another skip: a later run may still succeed
        current = states.get(run.job_id)
        if current is None or rank[state] >= rank[current[0]]:
            states[run.job_id] = (state, run)
    return states


def _release(run: JobRun, now: datetime) -> str:
    """waiting -> queued, unless another run of the job is active (the one active run per job
    constraint refuses it: it stays waiting for that run's end). Sent after commit; a deferred
    run (``not_before`` ahead) is sent by the sweep at its time."""
    due = run.not_before is None or run.not_before <= now
    try:
        with transaction.atomic():
            released = JobRun.objects.filter(pk=run.pk, status=Status.WAITING).update(
                status=Status.QUEUED, dispatched_at=now if due else None
            )
    except IntegrityError:
        return "held"
    if not released:
        return "gone"
    run.status, run.dispatched_at = Status.QUEUED, now if due else None
    logger.info("chained run released job=%s run=%s", run.job.name, run.pk)
    if due:
        transaction.on_commit(lambda: runs_publish([run]))
    return "released"


def chains_on_run_finished(sender, run: JobRun, final: bool, **kwargs) -> None:
    """A run that ended may release (or fail) the waiting runs of the jobs that wait on its job,
    and its own job's next waiting run. Errors are logged: the sweep looks again."""
    if not final and run.status != Status.SUCCEEDED:
        return
    try:
        job_ids = {run.job_id, *JobDependency.objects.filter(upstream_id=run.job_id).values_list("job_id", flat=True)}
        if JobRun.objects.filter(status=Status.WAITING, job_id__in=job_ids).exists():
            chains_release(now=timezone.now(), job_ids=job_ids, deadlines=False)
    except Exception:
        logger.exception("chain release after run %s failed", run.pk)
