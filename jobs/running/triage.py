"""Triage of failed runs: acknowledge a failure with a note, retry a selection at once.

Both take a failure off the failures list (``jobs.status.failures``): a failure leaves it once it
was retried (by the runner or by a person, ``JobRun.retry_of``) or acknowledged. Both need the
job's ``run`` rule (``jobs.permissions.access``) and are audited, allowed or refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs.models import AuditEntry, JobRun
from jobs.permissions import access
from jobs.permissions.audit import audit_record
from jobs.running.run_requests import ActionRefused, RunRefused, run_retry

logger = logging.getLogger(__name__)

NOTE_LIMIT = 500
# A selection is a page of the failures list at most.
SELECTION_LIMIT = 100


def run_acknowledge(*, run: JobRun, user, note: str, address: str = "") -> JobRun:
    """Mark the failure ``run`` as looked at by ``user``, for the reason ``note``.

    1. Refuse (``RunRefused``, audited) a user without the job's ``run`` rule.
    2. Refuse (``ActionRefused``) a run that is no failure, or an empty note.
    3. One conditional UPDATE: of two people acknowledging at once, the first one's note stays.
    4. Audit the acknowledgement on the job (its page lists it).
    """
    about = {"acknowledged_run": [None, run.pk]}
    if not access.job_allows(user, access.RUN, run.job):
        reason = access.refusal_reason(user, access.RUN)
        audit_record(
            actor=user, action=AuditEntry.Action.OTHER, instance=run.job, address=address, refused=reason, changes=about
        )
        raise RunRefused(f"{run.job.name}: not allowed ({reason})")
    note = " ".join(note.split())[:NOTE_LIMIT]
    if run.status not in JobRun.FAILURE_STATUSES:
        raise ActionRefused(f"Run #{run.pk} is {run.status}: only a failure is acknowledged.")
    if not note:
        raise ActionRefused("Say in a note why this failure needs no retry.")
    now = timezone.now()
    marked = JobRun.objects.filter(pk=run.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=now, acknowledged_by=user, acknowledgement=note, triaged_at=Coalesce("triaged_at", Value(now))
    )
    if not marked:
        raise ActionRefused(f"Run #{run.pk} was already acknowledged.")
    run.acknowledged_at, run.acknowledged_by, run.acknowledgement = now, user, note
    audit_record(
        actor=user,
        action=AuditEntry.Action.OTHER,
        instance=run.job,
        address=address,
        changes={**about, "note": [None, note]},
    )
    return run


def failure_retried(sender, run: JobRun, final: bool, **kwargs) -> None:
    """The runner retried the failure ``run`` (``run_finished`` with ``final`` false): it leaves the
    failures list's index. (A person's retry marks it in its own transaction, run_retry.) A fault
    here must not disturb the end of the run that sent the signal: it is logged, and the list
    still leaves the failure out by its retry."""
    if final or run.status not in JobRun.FAILURE_STATUSES:
        return
    try:
        JobRun.objects.filter(pk=run.pk, triaged_at__isnull=True).update(triaged_at=timezone.now())
    except Exception:
        logger.exception("run %s: could not mark the retried failure as triaged", run.pk)


@dataclass
class TriageOutcome:
    run: JobRun  # the failure acted on
    done: bool
    message: str


def runs_retry(*, runs: list[JobRun], user, address: str = "") -> list[TriageOutcome]:
    """Retry each failure of a selection through ``run_retry`` (and so ``run_request``: each one
    permission-checked and audited on its own); a refused one says why."""
    outcomes = []
    for run in runs:
        try:
            result = run_retry(run=run, user=user, address=address)
        except ActionRefused as exc:
            outcomes.append(TriageOutcome(run, False, f"#{run.pk}: {exc}"))
            continue
        message = f"#{run.pk}: {result.message}"
        outcomes.append(TriageOutcome(run, result.queued, message))
    return outcomes


def runs_acknowledge(*, runs: list[JobRun], user, note: str, address: str = "") -> list[TriageOutcome]:
    """``run_acknowledge`` each failure of a selection with one note; a refused one says why."""
    outcomes = []
    for run in runs:
        try:
            run_acknowledge(run=run, user=user, note=note, address=address)
        except ActionRefused as exc:
            outcomes.append(TriageOutcome(run, False, f"#{run.pk}: {exc}"))
            continue
        outcomes.append(TriageOutcome(run, True, f"#{run.pk}: acknowledged"))
    return outcomes
