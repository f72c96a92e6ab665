"""A person, an API key or the command line cancels a run: ``cancel_request``, the one way in for
the dashboard's and the admin's "Cancel", ``POST /api/runs/<id>/cancel`` and ``manage.py cancel_run``.

It checks ``jobs.permissions.access`` (``cancel``: the ``jobs.cancel_run`` permission, or an API
key whose scope holds the job), asks the run engine (``runner.run_cancel``) and audits the outcome,
allowed or refused. A queued run, or a chained one waiting for its upstreams, ends cancelled at
once and never starts; a running one is asked to stop (docs/operations.md, "Cancelling a run").
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.models import AuditEntry, JobRun
from jobs.permissions import access
from jobs.permissions.audit import actor_label, audit_record
from jobs.running.run_requests import ActionRefused
from jobs.running.runner import run_cancel

# Longest reason kept on the run (JobRun.cancel_reason).
REASON_LENGTH = 200


class CancelRefused(ActionRefused):
    """The asker may not cancel this run's job."""


@dataclass
class CancelResult:
    run: JobRun
    # "cancelled" (it was queued or waiting), "requested" (it is running and was asked to stop), or
    # "ended" (it had ended, or was asked to stop already: nothing changed)
    outcome: str

    @property
    def message(self) -> str:
        if self.outcome == "cancelled":
            return f"Run #{self.run.pk} cancelled: it will not start."
        if self.outcome == "requested":
            return f"Run #{self.run.pk} asked to stop: it ends cancelled at its next step or is killed after the grace."
        if self.run.cancel_requested_at is not None and self.run.is_active:
            return f"Run #{self.run.pk} was asked to stop already."
        return f"Run #{self.run.pk} is {self.run.status}: only a queued, waiting or running run is cancelled."


def cancel_request(*, run: JobRun, who, reason: str, address: str = "") -> CancelResult:
    """Cancel ``run`` on behalf of ``who`` (a user, an ApiKey, BOOTSTRAP, or a label such as the
    command line's): check the ``cancel`` rule (not for a label: the machine's own operator),
    cancel, audit. Raises ``CancelRefused``, audited, when ``who`` may not."""
    reason = " ".join(str(reason or "").split())[:REASON_LENGTH] or "no reason given"
    job = run.job
    changes = {"run": [None, run.pk], "reason": [None, reason]}
    if not isinstance(who, str) and not access.job_allows(who, access.CANCEL, job):
        refusal = access.refusal_reason(who, access.CANCEL)
        audit_record(
            actor=who, action=AuditEntry.Action.CANCEL, instance=job, address=address, refused=refusal, changes=changes
        )
        raise CancelRefused(f"{job.name}: not allowed to cancel run #{run.pk} ({refusal})")
    outcome = run_cancel(run=run, who=actor_label(who), reason=reason) or "ended"
    if outcome == "ended":
        run.refresh_from_db()
    changes["outcome"] = [run.status if outcome == "ended" else None, outcome]
    audit_record(actor=who, action=AuditEntry.Action.CANCEL, instance=job, address=address, changes=changes)
    return CancelResult(run, outcome)
