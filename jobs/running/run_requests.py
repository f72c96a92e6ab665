"""A person or an API key asks for a run: ``run_request``, the one way in for "Run now" (admin and
dashboard), the session and bearer API, a retry, a slot run again and a backfill's start.

It checks ``jobs.permissions.access`` (``run``), triggers through the run engine
(``runner.run_trigger``, under the one-active-run-per-job rule: a refusal is a recorded skip) and
audits the outcome, allowed or refused.

A run booked to a schedule slot is run again *as of* that slot: the new run carries the slot as
its ``as_of`` option and no ``scheduled_for`` of its own, because (job, slot, attempt) belongs
to the slot's scheduled run and its retries, and beat's "one run per slot" guard must stay exact.
A webhook handler has no ``--as-of``, so a webhook job's slots cannot be run again this way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.models import AuditEntry, Backfill, Job, JobRun
from jobs.permissions import access
from jobs.permissions.audit import audit_record, audit_run
from jobs.running.execution import is_job_command
from jobs.running.run_options import OptionsRefused, run_options_checked
from jobs.running.runner import JobDisabled, TriggerResult, run_trigger
from jobs.scheduling.cron import fire_times, interval_slot

logger = logging.getLogger(__name__)

# A backfill lists its slots for confirmation and stores them: beyond this, split the range.
BACKFILL_MAX_SLOTS = 100


class ActionRefused(Exception):
    """The action cannot be done on this run or job; the message says why, for the page."""


class RunRefused(ActionRefused):
    """``run_request`` refused: the asker may not run the job, or the API asked for a paused one."""

    def __init__(self, message: str, *, disabled: bool = False):
        super().__init__(message)
        self.disabled = disabled


class RunOptionsRefused(ActionRefused):
    """The run's options are not ones the job's command takes; nothing was recorded."""


def run_request(
    *,
    job: Job,
    who,
    address: str = "",
    trigger: str = JobRun.Trigger.MANUAL,
    options: dict | None = None,
    repeats: JobRun | None = None,
    backfill: Backfill | None = None,
    about: dict | None = None,
) -> TriggerResult:
    """Ask for one run of ``job`` on behalf of ``who`` (a user, an ApiKey or the bootstrap key),
    from ``address``: check the ``run`` rule, trigger, audit. Returns the trigger's result (a
    queued run, or a recorded skip when another run is active); raises ``RunRefused``, audited,
    when ``who`` may not run the job or the API asks for a paused one, and RunOptionsRefused
    (nothing recorded) when the job's command does not take ``options`` (``run_options_checked``).
    ``repeats``: the run this one repeats (a retry, a slot run again), named in the audit entry;
    ``backfill``: the backfill whose slot it is;
    ``about``: more for the audit entry (``{field: [None, value]}``), e.g. the API caller's own note."""
    about = {**(about or {}), **({"repeats_run": [None, repeats.pk]} if repeats is not None else {})}
    if not access.job_allows(who, access.RUN, job):
        reason = access.refusal_reason(who, access.RUN)
        audit_record(
            actor=who, action=AuditEntry.Action.RUN, instance=job, address=address, refused=reason, changes=about
        )
        raise RunRefused(f"{job.name}: not allowed ({reason})")
    try:
        options = run_options_checked(job, options)
    except OptionsRefused as exc:
        raise RunOptionsRefused(f"{job.name}: {exc}") from None
    if options:
        about = {**about, "options": [None, options]}
    user = who if isinstance(who, get_user_model()) else None
    try:
        result = run_trigger(job=job, triggered_by=trigger, user=user, options=options, backfill=backfill)
    except JobDisabled as exc:
        audit_record(actor=who, action=AuditEntry.Action.RUN, instance=job, address=address, refused="job is paused")
        raise RunRefused(str(exc), disabled=True) from None
    audit_run(who=who, job=job, run=result.run, address=address, about=about)
    return result


def run_request_message(job: Job, result: TriggerResult) -> str:
    """What a page says about ``run_request``'s result."""
    if result.queued and result.run.behind_active_run:
        return f"{job.name}: run #{result.run.pk} queued; it starts when the active run ends (overlap policy)"
    if result.queued:
        return f"{job.name}: run #{result.run.pk} queued"
    return f"{job.name}: not started, {result.run.skip_reason}"


def jobs_run_now(*, jobs, user, address: str = "") -> tuple[list[str], list[str]]:
    """ "Run now" on several jobs (the admin's action, the dashboard's button): ``run_request``
    each; returns (started, refused) messages."""
    started, refused = [], []
    for job in jobs:
        try:
            result = run_request(job=job, who=user, address=address)
        except RunRefused as exc:
            refused.append(str(exc))
            continue
        (started if result.queued else refused).append(run_request_message(job, result))
    return started, refused


@dataclass
class ActionResult:
    run: JobRun | None  # the new run (queued or a recorded skip); None when refused outright
    message: str

    @property
    def queued(self) -> bool:
        return self.run is not None and self.run.status == JobRun.Status.QUEUED


def runs_as_of_slots(job: Job) -> bool:
    """Whether ``job`` can do the work of a past slot (its command takes ``--as-of``)."""
    return not job.webhook_handler_id and is_job_command(job.command)


def may_retry(run: JobRun) -> bool:
    """A failure not retried yet (by the runner or by hand) whose work can be done again."""
    return (
        run.status in JobRun.FAILURE_STATUSES
        and (run.scheduled_for is None or runs_as_of_slots(run.job))
        and run.retried_as() is None
    )


def may_run_slot_again(run: JobRun) -> bool:
    return run.scheduled_for is not None and not run.is_active and runs_as_of_slots(run.job)


def run_again_options(run: JobRun) -> dict:
    """The run's own options, plus its slot as ``as_of`` (an explicit ``as_of`` wins)."""
    options = dict(run.options or {})
    if run.scheduled_for is not None and not options.get("as_of"):
        options["as_of"] = run.scheduled_for.isoformat()
    return options


def run_retry(*, run: JobRun, user, address: str = "") -> ActionResult:
    """A new run of a failed, timed-out or abandoned run, with its options (and slot), recorded
    as its retry (``retry_of``): the failure leaves the failures list and offers no second retry.

    The new run and its link are written in one transaction: when two people retry the same
    failure at once, the database's one-retry-per-run constraint refuses the second link, and
    the second run goes with it (its message is sent only on commit)."""
    if (retry := run.retried_as()) is not None:
        raise ActionRefused(f"Run #{run.pk} was already retried as #{retry}.")
    if not may_retry(run):
        raise ActionRefused(f"Run #{run.pk} is {run.status}: only a failed, timed out or abandoned run is retried.")
    refused = None
    try:
        with transaction.atomic():
            try:
                result = _run_as(job=run.job, options=run_again_options(run), user=user, address=address, repeats=run)
            except RunRefused as exc:
                refused = exc  # raised once its audit entry is committed
            else:
                if result.queued:
                    JobRun.objects.filter(pk=result.run.pk).update(retry_of=run)
                    JobRun.objects.filter(pk=run.pk, triaged_at__isnull=True).update(triaged_at=timezone.now())
                    result.run.retry_of = run
    except IntegrityError:
        raise ActionRefused(f"Run #{run.pk} was retried by someone else meanwhile.") from None
    if refused is not None:
        raise refused
    run.retried_as_id = result.run.pk if result.queued else None
    return result


def run_slot_again(*, run: JobRun, user, address: str = "") -> ActionResult:
    """A new run as of the slot ``run`` was booked to, with its options."""
    if not may_run_slot_again(run):
        raise ActionRefused(f"Run #{run.pk} has no schedule slot this job can run again.")
    return _run_as(job=run.job, options=run_again_options(run), user=user, address=address, repeats=run)


def _run_as(*, job: Job, options: dict, user, address: str, repeats: JobRun) -> ActionResult:
    result = run_request(job=job, who=user, address=address, options=options, repeats=repeats)
    return ActionResult(result.run, run_request_message(job, result))


# --- backfill ---------------------------------------------------------------------------


def backfill_slots(job: Job, start: datetime, end: datetime) -> list[datetime]:
    """The slots ``job``'s schedule had in [start, end), oldest first (the schedule module's times).

    Raises ActionRefused for a job without a schedule, one that cannot run as of a slot, an empty
    or reversed range, or more than BACKFILL_MAX_SLOTS slots."""
    if not runs_as_of_slots(job):
        raise ActionRefused(f"{job.name} cannot run as of a past slot (its handler takes no --as-of).")
    if not (job.cron_expression or job.interval_seconds):
        raise ActionRefused(f"{job.name} has no schedule, so it has no slots to backfill.")
    if end <= start:
        raise ActionRefused("The end of the range must come after its start.")
    slots: list[datetime] = []
    for slot in _fire_times(job, start):
        if slot >= end:
            break
        if len(slots) == BACKFILL_MAX_SLOTS:
            raise ActionRefused(f"More than {BACKFILL_MAX_SLOTS} slots in that range: backfill it in smaller ranges.")
        slots.append(slot)
    return slots


def _fire_times(job: Job, start: datetime):
    """Fire times at or after ``start``, ascending."""
    if not job.interval_seconds:
        yield from fire_times(job.cron_expression, job.timezone, start - timedelta(microseconds=1))
        return
    step = timedelta(seconds=job.interval_seconds)
    slot = interval_slot(job.interval_seconds, start)
    if slot < start:
        slot += step
    while True:
        yield slot
        slot += step


def backfill_start(*, job: Job, slots: list[datetime], user, address: str = "", dry_run: bool = False) -> Backfill:
    """Store the backfill and ask for its first slot's run (``run_request``: allowed, audited). A
    first slot refused because another run of the job is active is recorded as a skip, and the
    backfill starts it again once that run has ended. ``dry_run``: every slot's run is a dry run,
    the preview of what each slot would write."""
    if not slots:
        raise ActionRefused("No slots to backfill.")
    slots = sorted(slots)
    with transaction.atomic():
        if Backfill.objects.filter(job=job, status=Backfill.Status.RUNNING).exists():
            raise ActionRefused(f"{job.name} already has a backfill running.")
        backfill = Backfill.objects.create(
            job=job, requested_by=user, slots=[slot.isoformat() for slot in slots], dry_run=dry_run
        )
        options = backfill_options(backfill, slots[0].isoformat())
        result = run_request(job=job, who=user, address=address, options=options, backfill=backfill)
        _backfill_started(backfill, result)
        backfill.save(update_fields=["run_ids"])
        audit_record(
            actor=user,
            action=AuditEntry.Action.RUN,
            instance=job,
            address=address,
            changes={"backfill": [None, backfill.pk], "slots": [None, len(slots)], **_dry_run_change(dry_run)},
        )
    return backfill


def backfill_options(backfill: Backfill, slot: str) -> dict:
    """A backfilled slot's run options: as of its slot, and a dry run in a preview backfill."""
    return {"as_of": slot, **({"dry_run": True} if backfill.dry_run else {})}


def _dry_run_change(dry_run: bool) -> dict:
    return {"dry_run": [None, True]} if dry_run else {}


def backfill_advance(*, backfill_id: int) -> None:
    """Start the next slot's run once the current one has ended for good (retries included).

    The row lock makes the receiver, a page and a second process agree on one next step. A slot
    whose run is refused because another run of the job is active waits for that run's end.
    """
    with transaction.atomic():
        backfill = Backfill.objects.select_for_update().select_related("job").filter(pk=backfill_id).first()
        if backfill is None or backfill.status != Backfill.Status.RUNNING:
            return
        job = backfill.job
        if len(backfill.run_ids) > backfill.position:
            if JobRun.objects.filter(job=job, status__in=JobRun.ACTIVE_STATUSES).exists():
                return  # its run, or its retry, is still under way
            backfill.run_ids[backfill.position] = last_attempt(backfill.run_ids[backfill.position])
            backfill.position += 1
        if backfill.position >= len(backfill.slots):
            backfill.status, backfill.finished_at = Backfill.Status.DONE, timezone.now()
        elif not JobRun.objects.filter(job=job, status__in=JobRun.ACTIVE_STATUSES).exists():
            _backfill_trigger(backfill)
        backfill.save()


def _backfill_trigger(backfill: Backfill) -> None:
    slot = backfill.slots[backfill.position]
    try:
        result = run_trigger(
            job=backfill.job,
            triggered_by=JobRun.Trigger.MANUAL,
            user=backfill.requested_by,
            options=backfill_options(backfill, slot),
            backfill=backfill,
        )
    except JobDisabled:
        backfill.status, backfill.finished_at = Backfill.Status.STOPPED, timezone.now()
        backfill.stop_reason = "the job was paused"
        return
    _backfill_started(backfill, result)


def _backfill_started(backfill: Backfill, result: TriggerResult) -> None:
    """Note the slot's run; a slot refused because another run is active waits for that run's
    end, which is marked to move the backfill on (only runs so marked look at a backfill)."""
    if result.booked:
        backfill.run_ids.append(result.run.pk)
        logger.info("backfill %s: slot %s is run #%s", backfill.pk, backfill.slots[backfill.position], result.run.pk)
    elif result.run is not None and result.run.blocked_by_id is not None:
        blocker = JobRun.objects.filter(pk=result.run.blocked_by_id, status__in=JobRun.ACTIVE_STATUSES)
        blocker.update(backfill=backfill)


def backfill_stop(*, backfill: Backfill, user, address: str = "") -> bool:
    """Start no further slot (the run under way, if any, finishes). False if it had ended."""
    stopped = Backfill.objects.filter(pk=backfill.pk, status=Backfill.Status.RUNNING).update(
        status=Backfill.Status.STOPPED,
        finished_at=timezone.now(),
        stop_reason=f"stopped by {user.get_username()}"[:200],
    )
    if stopped:
        audit_record(
            actor=user,
            action=AuditEntry.Action.OTHER,
            instance=backfill.job,
            address=address,
            changes={"backfill": [backfill.pk, "stopped"]},
        )
    return bool(stopped)


def last_attempt(run_id: int) -> int:
    """The id of the last retry that followed run ``run_id`` (its own id without retries)."""
    while (retry := JobRun.objects.filter(retry_of_id=run_id).values_list("pk", flat=True).first()) is not None:
        run_id = retry
    return run_id


def backfill_rows(backfill: Backfill) -> list[dict]:
    """Each slot with its run (None until started), for the progress page."""
    ids = backfill.run_ids
    runs = JobRun.objects.in_bulk(ids)
    return [
        {"slot": datetime.fromisoformat(slot), "run": runs.get(ids[index]) if index < len(ids) else None}
        for index, slot in enumerate(backfill.slots)
    ]


def backfill_on_run_finished(sender, run: JobRun, final: bool, **kwargs) -> None:
    """A run that ended for good may free its job's running backfill for its next slot. A fault
    here must not disturb the end of the run that sent the signal: it is logged, and the next
    run's end (or the backfill page's "Continue") moves the backfill on."""
    if not final or run.backfill_id is None:
        return  # the common case: a run no backfill waits for, and no query
    backfill_id = run.backfill_id
    try:
        backfill_advance(backfill_id=backfill_id)
    except Exception:
        logger.exception("backfill %s could not start its next slot", backfill_id)
