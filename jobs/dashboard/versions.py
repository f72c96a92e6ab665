"""The job page's versions: a page of a job's versions with each change as before / after, and
"Restore" (permission-checked through ``jobs.permissions.access``, audited)."""

from __future__ import annotations

import json
from math import ceil

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.ratelimit import client_address
from jobs.catalog.versions import job_version_restore
from jobs.models import AuditEntry, Job, JobVersion
from jobs.models.versions import field_label
from jobs.permissions import access
from jobs.permissions.audit import audit_record
from jobs.permissions.guards import action_rate_limited

VERSIONS_PAGE_SIZE = 10


def value_text(value) -> str:
    """A versioned value as a person reads it."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return (
            ", ".join(value)
            if isinstance(value, list) and all(isinstance(v, str) for v in value)
            else json.dumps(value, sort_keys=True)
        )
    return str(value)


def version_rows(versions: list[JobVersion]) -> list[dict]:
    return [
        {
            "version": version,
            "changes": [
                {"field": field_label(name), "before": value_text(before), "after": value_text(after)}
                for name, (before, after) in version.changes.items()
            ],
        }
        for version in versions
    ]


def job_versions_context(request, job: Job) -> dict:
    """One page of the job's versions, newest first (``?versions=N``), and whether the user may
    restore one. Two queries on jobs_jobversion_one_number however long the history: a job's
    versions are numbered 1, 2, 3 ... without gaps, so the newest number is also their count."""
    latest = job.versions.order_by("-number").values_list("number", flat=True).first() or 0
    pages = max(ceil(latest / VERSIONS_PAGE_SIZE), 1)
    number = request.GET.get("versions", "")
    number = min(max(int(number), 1), pages) if number.isdigit() else 1
    newest_shown = latest - (number - 1) * VERSIONS_PAGE_SIZE
    shown = list(job.versions.filter(number__lte=newest_shown).order_by("-number")[:VERSIONS_PAGE_SIZE])
    return {
        "versions_page": {
            "number": number,
            "pages": pages,
            "newer": number - 1 if number > 1 else None,
            "older": number + 1 if number < pages else None,
        },
        "version_rows": version_rows(shown),
        "latest_version": latest,
        "can_restore": access.job_allows(request.user, access.CHANGE, job),
    }


@staff_member_required
@require_POST
@action_rate_limited
def job_version_restore_view(request, name: str, number: int):
    job = Job.objects.filter(name=name, pk__in=access.allowed_jobs(request.user, access.VIEW)).first()
    if job is None:
        raise Http404("no such job")
    if not access.job_allows(request.user, access.CHANGE, job):
        reason = access.refusal_reason(request.user, access.CHANGE)
        audit_record(
            actor=request.user,
            action=AuditEntry.Action.UPDATE,
            instance=job,
            address=client_address(request),
            refused=reason,
            changes={"restored_version": [None, number]},
        )
        raise PermissionDenied(reason)
    try:
        version = job_version_restore(job=job, number=number, who=request.user, address=client_address(request))
    except JobVersion.DoesNotExist:
        raise Http404("no such version") from None
    except ValidationError as exc:
        messages.error(request, f"Version {number} cannot be restored: {'; '.join(exc.messages)}")
    else:
        messages.success(request, f"Version {number} restored as version {version.number}.")
    return redirect(reverse("jobs:job", args=[job.name]) + "#versions")
