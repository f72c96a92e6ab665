"""Putting a job's earlier version back: its schedule, handler, config, settings and the parts
other apps version (its alert channels), through the one validation (``job_full_clean``), as a
new version that says which one it restored, and audited."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from jobs.catalog.validation import job_full_clean
from jobs.models import AuditEntry, Job, JobVersion, WebhookHandler
from jobs.models.versions import VERSIONED_FIELDS, changes_by, job_snapshot, snapshot_changes, versioned_parts
from jobs.permissions.audit import audit_record


@transaction.atomic
def job_version_restore(*, job: Job, number: int, who, address: str = "", source: str = "dashboard") -> JobVersion:
    """Make ``job`` what its version ``number`` says (the caller has checked ``who`` may change it).

    1. Set every versioned field from the version; a handler deleted since is refused.
    2. Validate the job as any form would (``job_full_clean``): a version valid then may not be now
       (its command left the allow-list, its config no longer parses).
    3. Restore the other apps' parts, save the job (which records the new version, marked as
       restoring ``number``), and audit the change.

    Raises ``JobVersion.DoesNotExist`` or ``ValidationError``; nothing is changed then.
    """
    version = JobVersion.objects.get(job=job, number=number)
    job = Job.objects.select_for_update(of=("self",)).select_related("webhook_handler").get(pk=job.pk)
    parts = versioned_parts()
    before = job_snapshot(job, {name: part.read([job.pk])[job.pk] for name, part in parts.items()})
    _fields_set(job, version.snapshot)
    job_full_clean(job)
    with changes_by(who, source, restored_from=number):
        for name, part in parts.items():
            if name in version.snapshot:
                part.restore(job, version.snapshot[name])
        job.save()
    after = job.versions.order_by("-number").first()
    changes = snapshot_changes(before, after.snapshot if after else before)
    audit_record(
        actor=who,
        action=AuditEntry.Action.UPDATE,
        instance=job,
        address=address,
        changes={**changes, "restored_version": [None, number]},
    )
    return after


def _fields_set(job: Job, snapshot: dict) -> None:
    for name in VERSIONED_FIELDS:
        if name not in snapshot:
            continue
        value = snapshot[name]
        if name == "webhook_handler":
            handler = WebhookHandler.objects.filter(name=value).first() if value else None
            if value and handler is None:
                raise ValidationError({"webhook_handler": f"The webhook handler {value} no longer exists."})
            job.webhook_handler = handler
        else:
            setattr(job, name, value)
