"""The run lifecycle. Every entry point (beat, runjob, admin, dashboard, API, retries) calls this.

    trigger --> _run_insert (queued row, committed) --on commit--> run_send (Celery send_task)
                                                                     |
    worker: run_claim (queued -> running) --> command + heartbeat + time limit
            --> run_finish (succeeded | failed | timed_out) --> retry row (_run_insert, queued,
                not_before) --> job statistics --> run_finished signal (on commit)

One function each: ``_run_insert`` writes every run row (queued, skipped, retry), ``run_claim``
claims, ``run_finish`` / ``run_abandon`` end a run through ``_run_end``, ``run_send`` sends
the message. The database guards each step: the partial unique constraints turn a second
trigger into a recorded skip (or, for the same schedule slot, into nothing), and every status
change is a conditional UPDATE whose row count says whether this process won it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core.db_recovery import CLAIM_RETRY_SECONDS, FINISH_RETRY_SECONDS, with_reconnect
from core.formatting import one_line
from core.redaction import redact
from jobs.models import Job, JobDependency, JobRun
from jobs.models.jobs import WAITING_LANE
from jobs.running.command import MAX_WARNINGS, WARNING_LENGTH
from jobs.running.execution import CANCEL_SIGNAL, Outcome, cancel_signal_ready, command_execute, is_pool_process
from jobs.running.heartbeat import run_heartbeat
from jobs.running.process_tree import descendants_end
from jobs.signals import run_finished

logger = logging.getLogger(__name__)

EXECUTE_TASK = "jobs.tasks.execute_run"
Status = JobRun.Status
Trigger = JobRun.Trigger
Overlap = Job.Overlap
# Policies under which a run may wait in the waiting lane for the active one to end.
WAITING_POLICIES = (Overlap.QUEUE_ONE, Overlap.REPLACE)


class JobDisabled(Exception):
    """The API asked to run a paused job (a paused job's schedule, and the external schedulers
    that call the API in its place, are what a pause holds back; a person may still run it)."""


# Who may run a paused job: a person, by hand (dashboard, admin, runjob), and the runner's own
# retry of a run that started before the pause. Beat's slots are recorded as skipped; the API refused.
BY_HAND = (Trigger.MANUAL, Trigger.CLI, Trigger.RETRY)


@dataclass
class TriggerResult:
    run: JobRun | None
    # "queued", "skipped" (recorded), "duplicate" (this slot already has its run), "waiting"
    # (nothing recorded yet: the slot waits behind a run held up by the broker, policy ``all``),
    # or "chained" (recorded ``waiting`` for the jobs it waits on: jobs.running.chains)
    outcome: str

    @property
    def queued(self) -> bool:
        return self.outcome == "queued"

    @property
    def booked(self) -> bool:
        """A run was recorded that will run: queued now, or once its upstreams have succeeded."""
        return self.outcome in ("queued", "chained")


# --- the one INSERT ---------------------------------------------------------------------


def _runs_insert(runs: list[JobRun], *, now: datetime | None = None) -> list[JobRun]:
    """Insert run rows (queued triggers, recorded skips, retries) in one statement; return the
    ones written, with their ids set. A row that a unique constraint refuses (another run of
    its job is active, or its slot already has its run) is left out and keeps no id, and never
    breaks the caller's transaction (``INSERT ... ON CONFLICT DO NOTHING``): beat records a
    burst of slots in one.

    Rows go in job order, so two writers of the same jobs wait for each other instead of
    deadlocking. Every row of one call carries the same ``created_at``, so the written ones are
    read back by (job, created_at), which jobs_jobrun_job_created serves; each row's own token
    (``celery_task_id``) tells it from any other.
    """
    if not runs:
        return []
    now = now or timezone.now()
    for run in runs:
        run.created_at = now
        run.celery_task_id = run.celery_task_id or str(uuid.uuid4())
    JobRun.objects.bulk_create(sorted(runs, key=lambda run: run.job_id), ignore_conflicts=True)
    stored = JobRun.objects.filter(job_id__in={run.job_id for run in runs}, created_at=now)
    ids = dict(stored.values_list("celery_task_id", "pk"))
    written = []
    for run in runs:
        run.pk = ids.get(run.celery_task_id)
        if run.pk is not None:
            written.append(run)
    return written


def _run_insert(*, job: Job, status: str, triggered_by: str, **fields) -> JobRun | None:
    """One row through ``_runs_insert``: the row written, or None if a constraint refused it."""
    written = _runs_insert([JobRun(job=job, status=status, triggered_by=triggered_by, **fields)])
    return written[0] if written else None


# --- trigger ----------------------------------------------------------------------------


@dataclass
class TriggerRequest:
    """One trigger for ``runs_book``: which job, asked by whom, for which slot, with what."""

    job: Job
    triggered_by: str
    user: object = None
    scheduled_for: datetime | None = None
    options: dict = field(default_factory=dict)
    dispatch: bool = True
    # Set: record the trigger as skipped for this reason instead of running it (a missed slot
    # under the ``skip`` catch-up policy).
    skip_reason: str = ""
    # The backfill whose slot this run is (its end moves the backfill on).
    backfill: object = None
    # The blackout window that holds this slot (jobs.scheduling.windows): with ``skip_reason``
    # the slot is skipped in it; with ``not_before`` (and no dispatch) it is deferred to its end.
    window_name: str = ""
    not_before: datetime | None = None


def runs_book(
    requests: list[TriggerRequest], *, now: datetime | None = None, publish: bool = True
) -> list[TriggerResult]:
    """Record triggers durably, then (on commit) send each queued run to a worker. Beat records
    a burst of due slots in one call; "Run now", the API, runjob and catch-up send one.

    1. A paused job refuses an API trigger (``JobDisabled``) and runs one by hand; a scheduled
       one that raced a pause is recorded as skipped, as is a request that carries its ``skip_reason``.
    2. Insert the queued runs (one statement). The database answers, row by row, whether
       another run of the job is active or the slot already has its run.
    3. A refused row whose slot has its run is a duplicate (nothing written); any other is
       recorded as a skip naming the run that blocked it (one statement for all).
    4. After commit, publish each queued run (``runs_publish``). A dead broker leaves it queued
       for process-jobs. ``publish=False``: the caller publishes them itself (beat, once a whole
       burst is recorded).

    The results come in the order of ``requests``.
    """
    now = now or timezone.now()
    for request in requests:
        if not request.job.enabled and request.triggered_by == Trigger.API:
            raise JobDisabled(f"Job {request.job.name!r} is paused.")
    chained = _chained_jobs(requests)
    rows = [_queued_row(request, now, chained) if _may_queue(request) else None for request in requests]
    _runs_insert([row for row in rows if row is not None], now=now)
    refused = [request for request, row in zip(requests, rows, strict=True) if row is not None and row.pk is None]
    fired = _slots_with_runs(refused)
    if refused:
        row_of = {id(request): row for request, row in zip(requests, rows, strict=True)}
        overlapping = [
            row_of[id(request)]
            for request in refused
            if (request.job.pk, request.scheduled_for) not in fired and _may_overlap(request)
        ]
        if overlapping:
            _overlap_admit(overlapping, now)
            refused = [request for request in refused if row_of[id(request)].pk is None]
    blockers = _active_runs({request.job.pk for request in refused})
    waiting = _behind_unpublished(refused, fired, blockers, rows, requests, now)
    results: list[TriggerResult | None] = []
    skips: list[JobRun] = []
    for request, row in zip(requests, rows, strict=True):
        if row is not None and row.pk is not None:
            results.append(TriggerResult(row, "chained" if row.status == Status.WAITING else "queued"))
        elif row is not None and (request.job.pk, request.scheduled_for) in fired:
            results.append(TriggerResult(None, "duplicate"))
        elif row is not None and request.job.pk in waiting:
            results.append(TriggerResult(None, "waiting"))
        else:
            active = blockers.get(request.job.pk) if row is not None else None
            reason = _blocked_reason(active) if row is not None else request.skip_reason or "job is paused"
            if row is not None and request.window_name:
                reason = f"inside window {request.window_name!r}: deferred, but {reason}"
            skips.append(_skip_row(request, reason, now, blocked_by=active))
            results.append(None)
    _runs_insert(skips, now=now)
    pending = iter(skips)
    for index, result in enumerate(results):
        if result is None:
            skip = next(pending)
            results[index] = TriggerResult(skip, "skipped") if skip.pk else TriggerResult(None, "duplicate")
    # Logged once committed: a burst rolled back (a leader that lost its session midway) wrote
    # no run, and the log must not name runs that never existed.
    transaction.on_commit(partial(_log_triggers, results, requests))
    # A run in the waiting lane is sent when the active run ends (_waiting_promote).
    outgoing = [
        result.run
        for result, request in zip(results, requests, strict=True)
        if result.queued and request.dispatch and request.not_before is None and result.run.lane != WAITING_LANE
    ]
    if publish and outgoing:
        transaction.on_commit(lambda: runs_publish(outgoing))
    return results


def run_trigger(
    *,
    job: Job,
    triggered_by: str,
    user=None,
    scheduled_for: datetime | None = None,
    options: dict | None = None,
    dispatch: bool = True,
    backfill=None,
) -> TriggerResult:
    """One trigger through ``runs_book``."""
    request = TriggerRequest(job, triggered_by, user, scheduled_for, options or {}, dispatch, backfill=backfill)
    return runs_book([request])[0]


def _may_overlap(request: TriggerRequest) -> bool:
    """Whether a trigger refused by an active run may take another place (Job.overlap). A run
    executed in this process (``runjob``: no message) may take a free lane but never waits."""
    policy = request.job.overlap or Overlap.SKIP
    return policy == Overlap.ALLOW or (policy != Overlap.SKIP and request.dispatch)


def _may_queue(request: TriggerRequest) -> bool:
    return not request.skip_reason and (request.job.enabled or request.triggered_by in BY_HAND)


def _chained_jobs(requests: list[TriggerRequest]) -> set[int]:
    """The jobs among ``requests`` that wait on other jobs (jobs.running.chains), for the
    requests that are a slot's run (beat's, catch-up's, a backfill's): one query for the lot."""
    slotted = {request.job.pk for request in requests if request.scheduled_for is not None or request.backfill}
    if not slotted:
        return set()
    return set(JobDependency.objects.filter(job_id__in=slotted).values_list("job_id", flat=True))


def _queued_row(request: TriggerRequest, now: datetime, chained: set[int] = frozenset()) -> JobRun:
    """The run a trigger asks for: queued, or ``waiting`` when it is a slot's run of a job that
    waits on others (it holds no job until jobs.running.chains releases it)."""
    waits = request.job.pk in chained and (request.scheduled_for is not None or request.backfill is not None)
    return JobRun(
        job=request.job,
        status=Status.WAITING if waits else Status.QUEUED,
        triggered_by=request.triggered_by,
        triggered_by_user=request.user,
        scheduled_for=request.scheduled_for,
        options=request.options,
        # Sent at once, unless it waits: for its upstreams, or (deferred) until ``not_before``,
        # when process-jobs' sweep sends it as it sends any unsent run that is due.
        dispatched_at=now if request.dispatch and not waits and request.not_before is None else None,
        backfill=request.backfill,
        not_before=request.not_before or _jittered_start(request, now),
        window_name=request.window_name,
    )


def _jittered_start(request: TriggerRequest, now: datetime) -> datetime | None:
    """When a scheduled run of a job with jitter may start: its slot plus the job's fixed offset
    (``Job.jitter_offset``), or None when that moment has passed (a caught-up slot starts at
    once). The run keeps its slot, so its command's as-of does not move. The claim waits for it
    as for a retry's ``not_before``, and the message carries it as its countdown (``run_send``)."""
    if request.triggered_by != Trigger.SCHEDULE or request.scheduled_for is None:
        return None
    start = request.scheduled_for + request.job.jitter_offset
    return start if start > now else None


def _skip_row(request: TriggerRequest, reason: str, now: datetime, blocked_by: JobRun | None = None) -> JobRun:
    return JobRun(
        job=request.job,
        status=Status.SKIPPED,
        triggered_by=request.triggered_by,
        triggered_by_user=request.user,
        scheduled_for=request.scheduled_for,
        options=request.options,
        skip_reason=reason[:200],
        blocked_by=blocked_by,
        finished_at=now,
        window_name=request.window_name,
    )


def _slots_with_runs(requests: list[TriggerRequest]) -> set[tuple[int, datetime]]:
    """(job, slot) pairs among ``requests`` whose slot already has its first run."""
    slotted = [request for request in requests if request.scheduled_for is not None]
    if not slotted:
        return set()
    rows = JobRun.objects.filter(
        job_id__in={request.job.pk for request in slotted},
        scheduled_for__in={request.scheduled_for for request in slotted},
        attempt=1,
    )
    return set(rows.values_list("job_id", "scheduled_for"))


# --- a slot that meets a run held up only by the broker -----------------------------------


def _unpublished(run: JobRun | None) -> bool:
    """An earlier slot's run, queued and never sent (its publish failed: the broker was away):
    a run that waits only for the broker, not for a worker. Not a retry waiting for its time,
    and never a run a person asked for (``runjob`` runs its own in-process, unsent)."""
    return (
        run is not None
        and run.triggered_by == Trigger.SCHEDULE
        and run.status == Status.QUEUED
        and run.dispatched_at is None
        and run.not_before is None
    )


def _behind_unpublished(refused, fired, blockers, rows, requests, now: datetime) -> set[int]:
    """Scheduled slots refused only because the job's earlier run never reached the broker are
    not skipped for it (docs/operations.md, "When the broker returns"), by the job's catch-up
    policy:

    * ``latest``: the new slot supersedes the older run, which is recorded skipped (a
      conditional UPDATE: only while it is still queued and unsent), and the new slot's row is
      inserted again; it is then queued, or refused as before if a worker got the older first;
    * ``all``: nothing is recorded now; the slot has no row, so the ``all`` backlog
      (``jobs.scheduling.catch_up``) runs it once the older run ends. Returned: those jobs' ids.

    ``skip`` jobs record the slot skipped, as that policy does with any slot it cannot run.
    """
    row_of = {id(request): row for request, row in zip(requests, rows, strict=True)}
    candidates = [
        request
        for request in refused
        if request.scheduled_for is not None
        and request.triggered_by == Trigger.SCHEDULE
        and (request.job.pk, request.scheduled_for) not in fired
        and _unpublished(blockers.get(request.job.pk))
    ]
    policy = {request.job.pk: request.job.catch_up or Job.CatchUp.LATEST for request in candidates}
    waiting = {request.job.pk for request in candidates if policy[request.job.pk] == Job.CatchUp.ALL}
    again = []
    for request in candidates:
        if policy[request.job.pk] == Job.CatchUp.LATEST and _supersede(blockers[request.job.pk], request, now):
            again.append(row_of[id(request)])
    _runs_insert(again, now=now)
    return waiting


def _supersede(older: JobRun, request: TriggerRequest, now: datetime) -> bool:
    reason = f"superseded by slot {request.scheduled_for:%Y-%m-%d %H:%M:%S}: never sent (broker away); policy latest"
    unsent = JobRun.objects.filter(pk=older.pk, status=Status.QUEUED, dispatched_at__isnull=True)
    if not unsent.update(status=Status.SKIPPED, skip_reason=reason[:200], finished_at=now):
        return False
    # Logged once committed, as every trigger is (runs_book).
    line = ("run superseded job=%s run=%s by slot=%s", request.job.name, older.pk, request.scheduled_for)
    transaction.on_commit(partial(logger.info, *line))
    return True


def _active_runs(job_ids: set[int]) -> dict[int, JobRun]:
    if not job_ids:
        return {}
    active = JobRun.objects.filter(job_id__in=job_ids, status__in=JobRun.ACTIVE_STATUSES).select_related("job")
    blockers: dict[int, JobRun] = {}
    # The run in the lowest lane names the block: the running one before the one that waits.
    for run in sorted(active, key=lambda run: (run.lane < 0, run.lane)):
        blockers.setdefault(run.job_id, run)
    return blockers


def _blocked_reason(active: JobRun | None) -> str:
    if active is None:
        return "another run was active"
    policy = active.job.overlap
    if policy == Overlap.ALLOW:
        return f"run #{active.pk} is {active.status}: all {active.job.max_concurrent} concurrent runs are taken"
    if policy == Overlap.QUEUE_ONE:
        return f"run #{active.pk} is {active.status} and another run already waits (overlap: queue one)"
    return f"run #{active.pk} is {active.status}"


# --- the overlap policy: which lane a refused trigger may still take --------------------------


def _overlap_admit(rows: list[JobRun], now: datetime) -> None:
    """Give each row refused by its job's active run the place its job's overlap policy allows
    (docs/operations.md, "Overlap policy"); a row still without an id is recorded as a skip.

    * allow up to N: the first free lane among 0..N-1 (each try an INSERT the lane's constraint
      may refuse, so two triggers never share one);
    * queue one: the waiting lane, if no run waits there yet;
    * replace: every queued run of the job is cancelled and a running one asked to stop, then
      the row takes lane 0 if that is free, else the waiting lane.

    Queue one and replace hold the job's row lock from here to commit, as the end of a run does
    before it promotes the waiting run (``_waiting_promote``): a run that starts waiting is
    always seen by the end that must start it.
    """
    for row in rows:
        if row.job.overlap == Overlap.ALLOW:
            _lane_free_take(row, now)
            continue
        with transaction.atomic():
            _job_lock(row.job_id)
            if row.job.overlap == Overlap.REPLACE:
                _active_replace(row, now)
            if not _runs_insert([row], now=now):
                row.lane, row.dispatched_at = WAITING_LANE, None
                if not _runs_insert([row], now=now):
                    row.lane = 0


def _lane_free_take(row: JobRun, now: datetime) -> None:
    taken = set(
        JobRun.objects.filter(job_id=row.job_id, status__in=JobRun.ACTIVE_STATUSES).values_list("lane", flat=True)
    )
    for lane in range(row.job.max_concurrent):
        if lane not in taken:
            row.lane = lane
            if _runs_insert([row], now=now):
                return
    row.lane = 0


def _job_lock(job_id: int) -> None:
    """The job's row lock until commit: serialises a run that starts waiting with the end that
    starts it (SQLite's writers are serialised anyway)."""
    list(Job.objects.select_for_update().filter(pk=job_id).values_list("pk", flat=True))


def _active_replace(row: JobRun, now: datetime) -> None:
    reason = f"replaced by a newer {row.triggered_by} trigger (overlap: replace)"
    for active in JobRun.objects.filter(job_id=row.job_id, status__in=JobRun.ACTIVE_STATUSES):
        _cancel_ask(active, who="overlap policy", reason=reason, now=now, promote=False)


def _waiting_promote(job_id: int, lane: int, now: datetime) -> JobRun | None:
    """Move the job's waiting run into ``lane`` (freed in this transaction) and send it on
    commit; the caller holds the job's row lock. None if no run waits."""
    waiting = JobRun.objects.filter(job_id=job_id, lane=WAITING_LANE, status=Status.QUEUED)
    run = waiting.select_related("job").first()
    if run is None:
        return None
    try:
        with transaction.atomic():
            moved = JobRun.objects.filter(pk=run.pk, lane=WAITING_LANE, status=Status.QUEUED).update(
                lane=lane, dispatched_at=now
            )
    except IntegrityError:  # the lane was taken meanwhile: the sweep promotes it later
        return None
    if not moved:
        return None
    run.lane, run.dispatched_at = lane, now
    logger.info("waiting run moves up job=%s run=%s lane=%s", run.job.name, run.pk, lane)
    transaction.on_commit(lambda: run_send(run))
    return run


def waiting_runs_promote(*, now: datetime) -> int:
    """Start every waiting run whose job has no active run left (process-jobs' safety net: a job
    whose policy changed while a run waited, or whose active run was ended without its end)."""
    promoted = 0
    waiting = JobRun.objects.filter(status=Status.QUEUED, lane=WAITING_LANE).values_list("job_id", flat=True)
    for job_id in list(waiting[:500]):
        with transaction.atomic():
            _job_lock(job_id)
            active = JobRun.objects.filter(job_id=job_id, status__in=JobRun.ACTIVE_STATUSES, lane__gte=0)
            if not active.exists():
                promoted += _waiting_promote(job_id, 0, now) is not None
    return promoted


# --- cancel -----------------------------------------------------------------------------------


def run_cancel(*, run: JobRun, who: str, reason: str, now: datetime | None = None) -> str:
    """Cancel ``run``: "cancelled" (it was queued, or waiting for its upstreams, and never starts),
    "requested" (it is running and was asked to stop), or "" (it had ended, or a cancel was asked
    for already). Conditional UPDATEs: a claim that won first makes it a running run, asked to stop;
    a chain's release that won first makes it a queued run, cancelled as one."""
    now = now or timezone.now()
    return _cancel_ask(run, who=who, reason=reason, now=now, promote=True)


def _cancel_ask(run: JobRun, *, who: str, reason: str, now: datetime, promote: bool) -> str:
    asked = dict(cancel_requested_at=now, cancelled_by=who[:150], cancel_reason=(reason or "no reason given")[:200])
    with transaction.atomic():
        if promote and run.job.overlap in WAITING_POLICIES:
            _job_lock(run.job_id)
        ending = dict(status=Status.CANCELLED, finished_at=now, **asked)
        queued = JobRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(**ending)
        # A chained run waiting for its upstreams holds no lane: its end frees none to promote into.
        chained = not queued and JobRun.objects.filter(pk=run.pk, status=Status.WAITING).update(**ending)
        if queued or chained:
            for name, value in ending.items():
                setattr(run, name, value)
            if queued and promote:
                lane = JobRun.objects.filter(pk=run.pk).values_list("lane", flat=True).first()
                if lane is not None and lane >= 0:
                    _waiting_promote(run.job_id, lane, now)
            transaction.on_commit(partial(logger.info, "run cancelled job=%s run=%s by=%s", run.job.name, run.pk, who))
            transaction.on_commit(lambda: run_finished.send(sender=JobRun, run=run, final=True))
            return "cancelled"
        running = JobRun.objects.filter(pk=run.pk, status=Status.RUNNING, cancel_requested_at__isnull=True)
        if running.update(**asked):
            for name, value in asked.items():
                setattr(run, name, value)
            line = ("run cancel requested job=%s run=%s by=%s", run.job.name, run.pk, who)
            transaction.on_commit(partial(logger.info, *line))
            return "requested"
    return ""


def _run_cancel_force(run: JobRun) -> None:
    """A cancelled run's grace is over (the heartbeat thread calls this): end the processes it
    started, record it cancelled, then stop its command. In a worker's pool process the process
    itself is killed (the pool starts another); in ``runjob`` the command is interrupted."""
    descendants_end()
    now = timezone.now()
    grace = settings.JOBS_CANCEL_GRACE_SECONDS
    error = f"Cancelled: it did not stop within {grace:g} s of the cancel, so it and its processes were killed."
    ending = dict(status=Status.CANCELLED, finished_at=now, duration=now - run.started_at, error=error)
    if not _run_end(run, ending, now=now, dispatch_retry=False):
        return
    logger.warning("run killed after its cancel's grace job=%s run=%s", run.job.name, run.pk)
    if is_pool_process():
        os.kill(os.getpid(), signal.SIGKILL)
    elif cancel_signal_ready():
        os.kill(os.getpid(), CANCEL_SIGNAL)


def _log_triggers(results: list[TriggerResult], requests: list[TriggerRequest]) -> None:
    for result, request in zip(results, requests, strict=True):
        run = result.run
        if result.queued:
            logger.info(
                "run queued job=%s run=%s trigger=%s slot=%s",
                request.job.name,
                run.pk,
                request.triggered_by,
                request.scheduled_for,
            )
        elif result.outcome == "chained":
            line = ("run waits for its upstreams job=%s run=%s slot=%s", request.job.name, run.pk, run.scheduled_for)
            logger.info(*line)
        elif run is not None:
            logger.info("run skipped job=%s run=%s reason=%s", request.job.name, run.pk, run.skip_reason)
        elif result.outcome == "waiting":
            logger.info(
                "slot waits job=%s slot=%s: an earlier run waits for the broker (policy all)",
                request.job.name,
                request.scheduled_for,
            )
        else:
            logger.info("slot already fired job=%s slot=%s", request.job.name, request.scheduled_for)


# --- publish ----------------------------------------------------------------------------


def runs_publish(runs: list[JobRun]) -> int:
    """Publish committed runs over one producer (``run_send`` each); how many went out.

    At the first failure (the broker is away) the rest are not tried, each paying the connection
    timeout: they are marked unsent in one UPDATE, for process-jobs to send later."""
    sent = 0
    with current_app.producer_or_acquire() as producer:
        for index, run in enumerate(runs):
            if not run_send(run, producer=producer):
                unsent = [later.pk for later in runs[index + 1 :]]
                JobRun.objects.filter(pk__in=unsent, status=Status.QUEUED).update(dispatched_at=None)
                break
            sent += 1
    return sent


def run_send(run: JobRun, *, countdown: float | None = None, producer=None) -> bool:
    """Send the committed run's message with Celery's ``send_task`` to its job's queue (the
    default queue when it names none). False if the broker is away. A run that waits for its
    ``not_before`` (a retry, a scheduled run's jitter) is sent with the wait as its countdown,
    so a re-send keeps it too.

    A trigger writes ``dispatched_at`` with its row, since the publish follows its commit at
    once; a failed publish clears it, so process-jobs re-sends the run. A process that dies
    between commit and publish leaves a run that looks sent: process-jobs re-sends it once
    JOBS_REDISPATCH_AFTER_SECONDS have passed, and a duplicate message finds nothing to claim.
    A run without the stamp (a re-send) gets it once its message is out."""
    timeout = run.job.timeout_seconds
    if countdown is None and run.not_before is not None:
        wait = (run.not_before - timezone.now()).total_seconds()
        countdown = wait if wait > 0 else None
    try:
        current_app.send_task(
            EXECUTE_TASK,
            args=[run.pk],
            task_id=run.celery_task_id or None,
            countdown=countdown,
            producer=producer,
            queue=run.job.queue or None,
            # No result to store: the run row is the record (a result backend would add one per run).
            ignore_result=True,
            soft_time_limit=timeout,
            time_limit=timeout + settings.JOBS_REAPER_GRACE_SECONDS / 2,
        )
    except Exception as exc:  # kombu raises many types for one meaning: not sent
        logger.warning("dispatch failed run=%s (%s); process-jobs will retry", run.pk, type(exc).__name__)
        JobRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(dispatched_at=None)
        return False
    if run.dispatched_at is None:
        JobRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(dispatched_at=timezone.now())
    return True


def run_resend(*, run_id: int, countdown: float | None = None) -> bool:
    """Publish a queued run known by id again (process-jobs' re-send); stamped anew when sent."""
    run = JobRun.objects.select_related("job").filter(pk=run_id, status=Status.QUEUED).first()
    if run is None:
        return False
    run.dispatched_at = None
    return run_send(run, countdown=countdown)


# --- execute ----------------------------------------------------------------------------


# The claim: queued -> running if still queued and due (a retry waits for its not_before), or the
# same row again if a first attempt claimed it with these very values before its reply was lost.
# RETURNING hands back the claimed row in the same statement (PostgreSQL, SQLite >= 3.35).
CLAIM_SQL = """
    UPDATE jobs_jobrun
       SET status = %s, heartbeat_at = %s, started_at = %s, worker_host = %s, worker_pid = %s
     WHERE id = %s
       AND ((status = %s AND lane >= 0 AND (not_before IS NULL OR not_before <= %s))
            OR (status = %s AND started_at = %s AND worker_host = %s AND worker_pid = %s))
    RETURNING *
"""


def run_claim(run_id: int) -> JobRun | None:
    """queued -> running, only if still queued and due; the row count says who won.

    One conditional UPDATE that returns the claimed run (``CLAIM_SQL``), then its job by primary
    key. A worker's connection may have died with a database restart while it idled: the claim
    reconnects and tries again. A repeated UPDATE also matches the row that a first attempt
    claimed before its reply was lost (same start, host and pid), so no claim is lost that way.
    """
    now = timezone.now()
    host, pid = socket.gethostname()[:200], os.getpid()

    def claim() -> JobRun | None:
        # Values prepared by the fields themselves, so each database stores them as the ORM does.
        moment = JobRun._meta.get_field("started_at").get_db_prep_value(now, connection)
        due = JobRun._meta.get_field("not_before").get_db_prep_value(now + timedelta(seconds=1), connection)
        params = [Status.RUNNING, moment, moment, host, pid, run_id, Status.QUEUED, due, Status.RUNNING]
        # raw() applies each field's conversion from the database (JSON, datetimes on SQLite).
        claimed = list(JobRun.objects.raw(CLAIM_SQL, [*params, moment, host, pid]))
        if not claimed:
            return None
        run = claimed[0]
        # The job as it is now (its config, timeout and handler may have changed since the trigger).
        run.job = list(Job.objects.raw("SELECT * FROM jobs_job WHERE id = %s", [run.job_id]))[0]
        return run

    return with_reconnect(claim, seconds=CLAIM_RETRY_SECONDS, what=f"claim of run {run_id}")


def run_execute(run_id: int, *, enforce_timeout: bool = False, dispatch_retry: bool = True) -> JobRun | None:
    """Claim and run one queued run, then record its end. None if someone else had it."""
    run = run_claim(run_id)
    if run is None:
        return None
    logger.info("run started job=%s run=%s attempt=%s", run.job.name, run.pk, run.attempt)
    # Beating until the outcome is recorded: that write may wait out a database restart.
    with run_heartbeat(run.pk, on_overdue=partial(_run_cancel_force, run)):
        outcome = _run_handler(run, enforce_timeout)
        return run_finish(run=run, outcome=outcome, dispatch_retry=dispatch_retry)


def _run_handler(run: JobRun, enforce_timeout: bool) -> Outcome:
    job = run.job
    if job.webhook_handler_id:
        from jobs.running.webhooks import webhook_execute

        return webhook_execute(run=run)
    return command_execute(
        command=job.command,
        config=job.config or {},
        options=run.options or {},
        timeout=job.timeout_seconds,
        output_limit=settings.JOBS_OUTPUT_LIMIT,
        enforce_timeout=enforce_timeout,
        slot=run.scheduled_for,
        run_id=run.pk,
    )


# --- finish -----------------------------------------------------------------------------


def run_finish(*, run: JobRun, outcome: Outcome, dispatch_retry: bool = True) -> JobRun:
    """Record the end of a running run, schedule its retry, update the job's statistics.

    The job's work is done: if the database restarted meanwhile, the write reconnects and
    tries again rather than leave the run to the reaper, which would retry the work.
    """
    now = timezone.now()
    warnings = run_warnings(outcome)
    ending = dict(
        status=outcome.status,
        finished_at=now,
        duration=now - run.started_at,
        # The summary's own copy of the warnings is the redacted one too (the run page shows it).
        summary={**outcome.summary, "warnings": warnings} if warnings else outcome.summary,
        output=outcome.output,
        error=outcome.error,
        warnings=warnings,
    )
    expected = run.job.expected_duration_seconds
    if expected is not None and ending["duration"] > timedelta(seconds=expected):
        # Only ever set: process-jobs may have flagged it while it ran.
        ending["slow"] = True
    ended = with_reconnect(
        lambda: _run_end(run, ending, now=now, dispatch_retry=dispatch_retry),
        seconds=FINISH_RETRY_SECONDS,
        what=f"outcome of run {run.pk}",
    )
    if not ended:
        logger.warning("run %s was ended elsewhere (reaped) before it finished", run.pk)
        run.refresh_from_db()
        return run
    _log_finished(run)
    if run.status in JobRun.FAILURE_STATUSES:
        # ERROR: what error trackers (Sentry's logging integration) and log alerting pick up.
        # The error was redacted when the outcome was built (jobs.running.execution).
        logger.error(
            "run failed job=%s run=%s status=%s attempt=%s error=%s",
            run.job.name,
            run.pk,
            run.status,
            run.attempt,
            one_line(run.error or ""),
        )
    return run


def run_warnings(outcome: Outcome) -> list[str]:
    """The warnings a succeeded command reported in its summary (``JobCommand.warn``), redacted
    (the database's secrets too) and bounded; none for any other outcome."""
    reported = outcome.summary.get("warnings") if outcome.status == Status.SUCCEEDED else None
    if not reported or not isinstance(reported, list):
        return []
    return [redact(str(text), stored=True)[:WARNING_LENGTH] for text in reported[:MAX_WARNINGS]]


def run_abandon(*, run: JobRun, reason: str) -> JobRun | None:
    """The reaper's end for a run whose process is gone or far past its timeout."""
    now = timezone.now()
    # A run someone cancelled whose process is gone has ended as they asked: never retried.
    status = Status.CANCELLED if run.cancel_requested_at else Status.ABANDONED
    ending = dict(status=status, finished_at=now, duration=now - (run.started_at or now), error=reason)
    if not _run_end(run, ending, now=now, dispatch_retry=True):
        return None
    logger.error("run abandoned job=%s run=%s reason=%s", run.job.name, run.pk, reason)
    return run


def _run_end(run: JobRun, ending: dict, *, now: datetime, dispatch_retry: bool) -> bool:
    """running -> ``ending``, then the retry, the job's statistics and (on commit) run_finished.
    False if the run was no longer running (another process ended it first)."""
    with transaction.atomic():
        waits = run.job.overlap in WAITING_POLICIES
        if waits:
            _job_lock(run.job_id)  # before the run's row: the order a trigger that waits takes
        if not JobRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(**ending):
            return False
        for name, value in ending.items():
            setattr(run, name, value)
        retry = _retry_if_allowed(run, now, dispatch_retry)
        if waits and retry is None:
            _waiting_promote(run.job_id, run.lane, now)
        _record_statistics(run, final=retry is None)
        transaction.on_commit(lambda: run_finished.send(sender=JobRun, run=run, final=retry is None))
    return True


def _log_finished(run: JobRun) -> None:
    duration = run.duration.total_seconds()
    fields = {
        "event": "run finished",
        "job": run.job.name,
        "run_id": run.pk,
        "status": run.status,
        "duration_seconds": round(duration, 3),
        "attempt": run.attempt,
        "slow": run.slow,
        "warnings": len(run.warnings or []),
    }
    logger.info(
        "run finished job=%s run=%s status=%s duration=%.3fs attempt=%s%s%s",
        run.job.name,
        run.pk,
        run.status,
        duration,
        run.attempt,
        " slow=true" if run.slow else "",
        f" warnings={len(run.warnings)}" if run.warnings else "",
        extra={"run_log": fields},
    )


def _retry_if_allowed(run: JobRun, now: datetime, dispatch: bool) -> JobRun | None:
    job = run.job
    if run.status not in JobRun.FAILURE_STATUSES or run.attempt > job.max_retries:
        return None
    delay = job.backoff_for_attempt(run.attempt)
    retry = _run_insert(
        job=job,
        status=Status.QUEUED,
        triggered_by=Trigger.RETRY,
        triggered_by_user=run.triggered_by_user,
        scheduled_for=run.scheduled_for,
        attempt=run.attempt + 1,
        retry_of=run,
        options=run.options,
        backfill_id=run.backfill_id,
        lane=run.lane,
        not_before=now + delay,
        dispatched_at=now if dispatch else None,
    )
    if retry is None:
        logger.warning("retry of run %s not created: job %s already has an active run", run.pk, job.name)
        return None
    # retry_of is a plain foreign key (no reverse one-to-one cache): callers such as the
    # reaper's count read whether this run was retried from here.
    run.retried_by = retry
    if dispatch:
        transaction.on_commit(lambda: run_send(retry, countdown=delay.total_seconds()))
    logger.info(
        "retry scheduled job=%s run=%s attempt=%s in=%ss", job.name, retry.pk, retry.attempt, delay.total_seconds()
    )
    return retry


def _record_statistics(run: JobRun, *, final: bool) -> None:
    """Denormalised on Job so lists need no aggregate; F() keeps concurrent updates exact.

    A dry run wrote nothing, so it is not the job's last run: it neither hides a failure nor
    counts as one (the run itself, marked dry, stays in the history). A cancelled run is neither
    a success nor a failure: someone stopped it, and the job's record stays as it was."""
    if (run.options or {}).get("dry_run") or run.status == Status.CANCELLED:
        return
    values = {
        "last_run_at": run.started_at,
        "last_run_status": run.status,
        "last_duration": run.duration,
        "last_run_warnings": len(run.warnings or []),
    }
    if run.status == Status.SUCCEEDED:
        values.update(last_success_at=run.finished_at, consecutive_failures=0)
    elif final:
        values["consecutive_failures"] = F("consecutive_failures") + 1
    Job.objects.filter(pk=run.job_id).update(**values)


# --- a chained run that never runs ------------------------------------------------------


def run_end_waiting(
    *, run: JobRun, status: str, now: datetime, error: str = "", skip_reason: str = "", window_name: str = ""
) -> bool:
    """waiting -> failed (its upstreams failed or missed the deadline) or skipped (a blackout
    window skipped their slot): jobs.running.chains' end of a run that never started. A
    conditional UPDATE; a failure counts in the job's statistics; run_finished follows the
    commit, final (no retry: the run would only wait again). False if it was no longer waiting."""
    ending = dict(status=status, finished_at=now, error=error, skip_reason=skip_reason[:200], window_name=window_name)
    with transaction.atomic():
        if not JobRun.objects.filter(pk=run.pk, status=Status.WAITING).update(**ending):
            return False
        for name, value in ending.items():
            setattr(run, name, value)
        if status in JobRun.FAILURE_STATUSES:
            Job.objects.filter(pk=run.job_id).update(
                last_run_at=now, last_run_status=status, consecutive_failures=F("consecutive_failures") + 1
            )
        transaction.on_commit(lambda: run_finished.send(sender=JobRun, run=run, final=True))
    logger.log(
        logging.ERROR if status in JobRun.FAILURE_STATUSES else logging.INFO,
        "chained run ended job=%s run=%s status=%s reason=%s",
        run.job.name,
        run.pk,
        status,
        error or skip_reason,
    )
    return True
