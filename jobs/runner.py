"""The run lifecycle. Every entry point (beat, runjob, admin, API, dashboard) calls this.

    trigger --> [JobRun queued, committed] --on commit--> Celery message
                                                            |
    worker: claim (queued -> running) --> command + heartbeat + time limit
            --> finish (succeeded | failed | timed_out) --> retry row (queued, not_before)
            --> job statistics --> run_finished signal (on commit)

The database guards each step: the partial unique constraints turn a second trigger into
a recorded skip (or, for the same schedule slot, into nothing), and every status change is
a conditional UPDATE whose row count says whether this process won it.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import run_sql, trigger_sql
from .execution import Outcome, command_execute
from .heartbeat import run_heartbeat
from .models import Job, JobRun
from .publisher import Publisher
from .schedules import slot_for_tick
from .signals import run_finished

logger = logging.getLogger(__name__)

EXECUTE_TASK = "jobs.tasks.execute_run"
Status = JobRun.Status
Trigger = JobRun.Trigger


class JobDisabled(Exception):
    """A person or system asked to run a disabled job."""


@dataclass
class TriggerResult:
    run: JobRun | None
    outcome: str  # "queued", "skipped" (recorded), or "duplicate" (this slot already has its run)

    @property
    def queued(self) -> bool:
        return self.outcome == "queued"


# --- trigger ----------------------------------------------------------------------------


def run_trigger(
    *,
    job: Job,
    triggered_by: str,
    user=None,
    scheduled_for: datetime | None = None,
    options: dict | None = None,
    dispatch: bool = True,
) -> TriggerResult:
    """Record a trigger durably, then (on commit) send it to a worker.

    1. A disabled job refuses manual triggers; a scheduled tick that raced a disable is
       recorded as skipped.
    2. Insert the queued run. The database answers whether another run is active (recorded
       skip, naming the blocker) or this slot already has a run (duplicate, nothing written).
    3. After commit, publish the Celery message. A dead broker leaves the run queued for
       process-jobs to send later.

    ``dispatched_at`` is written with the row (the publish is about to happen) and cleared
    only if the publish fails, so a trigger costs one INSERT. A process that dies between
    commit and publish leaves a run that looks sent: process-jobs re-sends it once
    JOBS_REDISPATCH_AFTER_SECONDS have passed, and a duplicate message finds nothing to claim.
    """
    options = options or {}
    if not job.enabled and triggered_by != Trigger.RETRY:
        if triggered_by != Trigger.SCHEDULE:
            raise JobDisabled(f"Job {job.name!r} is disabled.")
        return _record_skip(job, triggered_by, user, scheduled_for, options, "job is disabled", None)
    fields = dict(
        job=job,
        triggered_by=triggered_by,
        triggered_by_user=user,
        scheduled_for=scheduled_for,
        options=options,
        celery_task_id=str(uuid.uuid4()),
        dispatched_at=timezone.now() if dispatch else None,
    )
    try:
        run = _insert_guarded(fields)
    except IntegrityError:
        return _explain_conflict(job, triggered_by, user, scheduled_for, options)
    return _queued(run, job, dispatch)


def _queued(run: JobRun, job: Job, dispatch: bool = True) -> TriggerResult:
    """Send the committed run's message (the row and its job are in hand: no read back)."""
    if dispatch:
        transaction.on_commit(lambda: _publish(run, job, record=False))
    _log_queued(job.name, run.pk, run.triggered_by, run.scheduled_for)
    return TriggerResult(run, "queued")


def _log_queued(job_name: str, run_id: int, triggered_by: str, slot: datetime | None) -> None:
    logger.info("run queued job=%s run=%s trigger=%s slot=%s", job_name, run_id, triggered_by, slot)


def _insert_guarded(fields: dict) -> JobRun:
    """INSERT the queued run; the unique constraints raise IntegrityError on a conflict.

    Outside a transaction the INSERT commits by itself (one round trip); inside the caller's
    transaction a savepoint keeps a conflict from breaking it.
    """
    if not transaction.get_connection().in_atomic_block:
        return JobRun.objects.create(status=Status.QUEUED, **fields)
    with transaction.atomic():
        return JobRun.objects.create(status=Status.QUEUED, **fields)


def _slot_taken(job: Job, scheduled_for: datetime | None) -> bool:
    return scheduled_for is not None and JobRun.objects.filter(job=job, scheduled_for=scheduled_for, attempt=1).exists()


def _explain_conflict(job, triggered_by, user, scheduled_for, options) -> TriggerResult:
    if _slot_taken(job, scheduled_for):
        logger.info("slot already fired job=%s slot=%s", job.name, scheduled_for)
        return TriggerResult(None, "duplicate")
    active = JobRun.objects.filter(job=job, status__in=JobRun.ACTIVE_STATUSES).first()
    reason = f"run #{active.pk} is {active.status}" if active else "another run was active"
    return _record_skip(job, triggered_by, user, scheduled_for, options, reason, active)


def _record_skip(job, triggered_by, user, scheduled_for, options, reason, active) -> TriggerResult:
    now = timezone.now()
    try:
        with transaction.atomic():
            run = JobRun.objects.create(
                job=job,
                status=Status.SKIPPED,
                triggered_by=triggered_by,
                triggered_by_user=user,
                scheduled_for=scheduled_for,
                options=options,
                skip_reason=reason[:200],
                blocked_by=active,
                finished_at=now,
            )
    except IntegrityError:
        # Another beat recorded this very slot a moment ago.
        return TriggerResult(None, "duplicate")
    _log_skipped(job.name, run.pk, reason)
    return TriggerResult(run, "skipped")


def _log_skipped(job_name: str, run_id: int, reason: str) -> None:
    logger.info("run skipped job=%s run=%s reason=%s", job_name, run_id, reason)


class QueuedByKey(TriggerResult):
    """run_trigger_by_key's queued outcome: the run's id and its job's name at hand, and ``run``
    (the JobRun as stored) built on first access.

    The API answers a trigger from the id and the name alone. On PostgreSQL nothing else needs
    the JobRun or its Job, and building the two model instances (Model.__init__) cost ~35 us of
    the ~750 us of CPU a trigger took in-process, so they are built only for a caller that
    reads ``run``.
    """

    def __init__(self, *, run_id: int, job_name: str, build_run: Callable[[], JobRun]) -> None:
        self.outcome = "queued"
        self.run_id, self.job_name = run_id, job_name
        self._build_run = build_run

    @cached_property
    def run(self) -> JobRun:
        return self._build_run()


def run_trigger_by_key(
    *, name: str | None = None, job_id: int | None = None, triggered_by: str, user=None
) -> TriggerResult:
    """Trigger a job known by ``name`` or ``job_id`` (the HTTP API): run_trigger's outcomes,
    raising Job.DoesNotExist for an unknown job and JobDisabled for a disabled one. A queued
    run comes as a QueuedByKey on every database.

    On PostgreSQL the job lookup and the INSERT are one prepared statement (trigger_sql);
    ``result.run.job`` then has only the job's id, name, enabled and timeout loaded.
    """
    if not run_sql.applies():
        job = Job.objects.get(name=name) if name is not None else Job.objects.get(pk=job_id)
        result = run_trigger(job=job, triggered_by=triggered_by, user=user)
        if not result.queued:
            return result
        run = result.run
        return QueuedByKey(run_id=run.pk, job_name=job.name, build_run=lambda: run)
    now, task_id = timezone.now(), str(uuid.uuid4())
    inserted = trigger_sql.insert_queued(
        name=name,
        job_id=job_id,
        triggered_by=triggered_by,
        user_id=getattr(user, "pk", None),
        now=now,
        dispatched_at=now,
        task_id=task_id,
    )
    if inserted is None:
        raise Job.DoesNotExist(f"No job {name if name is not None else job_id!r}.")
    if not inserted.job_enabled:
        raise JobDisabled(f"Job {inserted.job_name!r} is disabled.")
    if inserted.run_id is None:
        return _skipped_by_key(inserted, triggered_by, user, now)
    run_id, job_name = inserted.run_id, inserted.job_name
    # From the statement's values instead of model instances; the API's volume goes through the
    # process's batching publisher.
    options = _message_options(task_id, inserted.job_timeout_seconds)
    transaction.on_commit(lambda: _background_publisher.submit(run_id, **options))
    _log_queued(job_name, run_id, triggered_by, None)

    def stored_run() -> JobRun:
        # What the statement wrote; the other fields are the model's defaults, as in the row.
        return JobRun(
            id=run_id,
            job=inserted.job,
            status=Status.QUEUED,
            triggered_by=triggered_by,
            triggered_by_user=user,
            celery_task_id=task_id,
            created_at=now,
            dispatched_at=now,
        )

    return QueuedByKey(run_id=run_id, job_name=job_name, build_run=stored_run)


def _skipped_by_key(inserted: trigger_sql.Inserted, triggered_by: str, user, now: datetime) -> TriggerResult:
    """run_trigger_by_key's conflict on PostgreSQL: _record_skip's row, written in one statement."""
    skipped = trigger_sql.insert_skipped(
        job_id=inserted.job_id, triggered_by=triggered_by, user_id=getattr(user, "pk", None), now=now
    )
    _log_skipped(inserted.job_name, skipped.run_id, skipped.skip_reason)
    run = JobRun(
        id=skipped.run_id,
        job=inserted.job,
        status=Status.SKIPPED,
        triggered_by=triggered_by,
        triggered_by_user=user,
        skip_reason=skipped.skip_reason,
        blocked_by_id=skipped.blocked_by_id,
        created_at=now,
        finished_at=now,
    )
    return TriggerResult(run, "skipped")


def run_trigger_scheduled(*, job_id: int, fired_at: datetime) -> TriggerResult | None:
    """A beat tick: work out the slot it fires and trigger that slot once."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        logger.warning("beat fired for missing job id=%s (orphan PeriodicTask)", job_id)
        return None
    slot = slot_for_tick(job.cron_expression, job.interval_seconds, job.timezone, fired_at)
    return run_trigger(job=job, triggered_by=Trigger.SCHEDULE, scheduled_for=slot)


# --- dispatch ---------------------------------------------------------------------------


def run_dispatch(*, run_id: int, countdown: float | None = None) -> bool:
    """Publish the run's message. Returns False (and leaves the run queued) if the broker is away."""
    run = JobRun.objects.select_related("job").filter(pk=run_id, status=Status.QUEUED).first()
    if run is None:
        return False
    return _publish(run, run.job, countdown=countdown)


def _publish(run: JobRun, job: Job, countdown: float | None = None, record: bool = True) -> bool:
    """Send the run's message. ``record``: stamp dispatched_at on success (a fresh trigger
    stamped it with the INSERT already); on failure it is always cleared."""
    try:
        current_app.send_task(EXECUTE_TASK, args=[run.pk], **_send_options(run, job, countdown))
    except Exception as exc:  # kombu raises many types for one meaning: not sent
        logger.warning("dispatch failed run=%s (%s); process-jobs will retry", run.pk, type(exc).__name__)
        JobRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(dispatched_at=None)
        return False
    if record:
        JobRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(dispatched_at=timezone.now())
    return True


def _send_options(run: JobRun, job: Job, countdown: float | None = None) -> dict:
    return _message_options(run.celery_task_id or None, job.timeout_seconds, countdown)


def _message_options(task_id: str | None, timeout: int, countdown: float | None = None) -> dict:
    return {
        "task_id": task_id,
        "countdown": countdown,
        "soft_time_limit": timeout,
        "time_limit": timeout + settings.JOBS_REAPER_GRACE_SECONDS / 2,
    }


_background_publisher = Publisher(EXECUTE_TASK)


# --- execute ----------------------------------------------------------------------------


_hostname: str | None = None


def _worker_host() -> str:
    global _hostname
    if _hostname is None:
        _hostname = socket.gethostname()[:200]
    return _hostname


def run_claim(run_id: int) -> JobRun | None:
    """queued -> running, only if still queued and due; the row count says who won."""
    now = timezone.now()
    due = now + timedelta(seconds=1)
    host, pid = _worker_host(), os.getpid()
    if run_sql.applies():
        return run_sql.claim(run_id=run_id, now=now, due=due, host=host, pid=pid)
    claimed = (
        JobRun.objects.filter(pk=run_id, status=Status.QUEUED)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=due))
        .update(status=Status.RUNNING, started_at=now, heartbeat_at=now, worker_host=host, worker_pid=pid)
    )
    if not claimed:
        return None
    return JobRun.objects.select_related("job", "job__webhook_handler").get(pk=run_id)


def run_execute(run_id: int, *, enforce_timeout: bool = False, dispatch_retry: bool = True) -> JobRun | None:
    """Claim and run one queued run, then record its end. None if someone else had it."""
    run = run_claim(run_id)
    if run is None:
        return None
    logger.info("run started job=%s run=%s attempt=%s", run.job.name, run.pk, run.attempt)
    with run_heartbeat(run.pk):
        outcome = _run_handler(run, enforce_timeout)
    return run_finish(run=run, outcome=outcome, dispatch_retry=dispatch_retry)


def _run_handler(run: JobRun, enforce_timeout: bool) -> Outcome:
    job = run.job
    if job.webhook_handler_id:
        from .webhook_execution import webhook_execute

        return webhook_execute(run=run)
    return command_execute(
        command=job.command,
        config=job.config or {},
        options=run.options or {},
        timeout=job.timeout_seconds,
        output_limit=settings.JOBS_OUTPUT_LIMIT,
        enforce_timeout=enforce_timeout,
    )


# --- finish -----------------------------------------------------------------------------


def run_finish(*, run: JobRun, outcome: Outcome, dispatch_retry: bool = True) -> JobRun:
    """Record the end of a running run, schedule its retry, update the job's statistics."""
    now = timezone.now()
    ending = dict(
        status=outcome.status,
        finished_at=now,
        duration=now - run.started_at,
        summary=outcome.summary,
        output=outcome.output,
        error=outcome.error,
    )
    expected = run.job.expected_duration_seconds
    if expected is not None and ending["duration"] > timedelta(seconds=expected):
        # Only ever set: process-jobs may have flagged it while it ran.
        ending["slow"] = True
    if outcome.status == Status.SUCCEEDED and run_sql.applies():
        return _finish_success_fast(run, ending)
    with transaction.atomic():
        ended = JobRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(**ending)
        if not ended:
            logger.warning("run %s was ended elsewhere (reaped) before it finished", run.pk)
            run.refresh_from_db()
            return run
        # What was just written, without reading the row back (refresh_from_db would also drop
        # the cached job and cost a second query for it).
        for name, value in ending.items():
            setattr(run, name, value)
        retry = _retry_if_allowed(run, now, dispatch_retry)
        _record_statistics(run, final=retry is None)
        transaction.on_commit(lambda: run_finished.send(sender=JobRun, run=run, final=retry is None))
    _log_finished(run)
    return run


def _finish_success_fast(run: JobRun, ending: dict) -> JobRun:
    """A success needs no retry: one statement ends the run and updates the job."""
    alert_state = run_sql.finish_success(
        run=run, finished_at=ending["finished_at"], summary=ending["summary"], output=ending["output"]
    )
    if alert_state is None:
        logger.warning("run %s was ended elsewhere (reaped) before it finished", run.pk)
        run.refresh_from_db()
        return run
    if ending.get("slow"):
        JobRun.objects.filter(pk=run.pk).update(slow=True)
    for name, value in ending.items():
        setattr(run, name, value)
    job = run.job
    job.alert_state = alert_state
    job.last_run_at, job.last_run_status, job.last_duration = run.started_at, run.status, run.duration
    job.last_success_at, job.consecutive_failures = run.finished_at, 0
    transaction.on_commit(lambda: run_finished.send(sender=JobRun, run=run, final=True))
    _log_finished(run)
    return run


def _log_finished(run: JobRun) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    duration = run.duration.total_seconds()
    fields = {
        "event": "run finished",
        "job": run.job.name,
        "run_id": run.pk,
        "status": run.status,
        "duration_seconds": round(duration, 3),
        "attempt": run.attempt,
        "slow": run.slow,
    }
    logger.info(
        "run finished job=%s run=%s status=%s duration=%.3fs attempt=%s%s",
        run.job.name,
        run.pk,
        run.status,
        duration,
        run.attempt,
        " slow=true" if run.slow else "",
        extra={"run_log": fields},
    )


def _retry_if_allowed(run: JobRun, now: datetime, dispatch: bool) -> JobRun | None:
    job = run.job
    if run.status not in JobRun.FAILURE_STATUSES or run.attempt > job.max_retries:
        return None
    delay = job.backoff_for_attempt(run.attempt)
    try:
        with transaction.atomic():
            retry = JobRun.objects.create(
                job=job,
                status=Status.QUEUED,
                triggered_by=Trigger.RETRY,
                triggered_by_user=run.triggered_by_user,
                scheduled_for=run.scheduled_for,
                attempt=run.attempt + 1,
                retry_of=run,
                options=run.options,
                not_before=now + delay,
                celery_task_id=str(uuid.uuid4()),
            )
    except IntegrityError:
        logger.warning("retry of run %s not created: job %s already has an active run", run.pk, job.name)
        return None
    # retry_of is a plain foreign key (no reverse one-to-one cache): callers such as the
    # reaper's count read whether this run was retried from here.
    run.retried_by = retry
    if dispatch:
        transaction.on_commit(lambda: run_dispatch(run_id=retry.pk, countdown=delay.total_seconds()))
    logger.info(
        "retry scheduled job=%s run=%s attempt=%s in=%ss", job.name, retry.pk, retry.attempt, delay.total_seconds()
    )
    return retry


def _record_statistics(run: JobRun, *, final: bool) -> None:
    """Denormalised on Job so lists need no aggregate; F() keeps concurrent updates exact."""
    values = {"last_run_at": run.started_at, "last_run_status": run.status, "last_duration": run.duration}
    if run.status == Status.SUCCEEDED:
        values.update(last_success_at=run.finished_at, consecutive_failures=0)
    elif final:
        values["consecutive_failures"] = F("consecutive_failures") + 1
    Job.objects.filter(pk=run.job_id).update(**values)


def run_abandon(*, run: JobRun, reason: str) -> JobRun | None:
    """The reaper's end for a run whose process is gone or far past its timeout."""
    now = timezone.now()
    with transaction.atomic():
        ended = JobRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
            status=Status.ABANDONED,
            finished_at=now,
            duration=now - (run.started_at or now),
            error=reason,
        )
        if not ended:
            return None
        run.refresh_from_db()
        retry = _retry_if_allowed(run, now, dispatch=True)
        _record_statistics(run, final=retry is None)
        transaction.on_commit(lambda: run_finished.send(sender=JobRun, run=run, final=retry is None))
    logger.warning("run abandoned job=%s run=%s reason=%s", run.job.name, run.pk, reason)
    return run
