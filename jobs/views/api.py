"""The HTTP trigger API for external schedulers (system cron, Kubernetes CronJob, pg_cron).

    POST /api/jobs/run     {"job": "<name>"} or {"job_id": N}   -> 202 {run_id, status, ...}
    GET  /api/jobs/status                                        -> every job
    GET  /api/runs/<id>                                          -> one run

Statuses: 401 token (wrong, revoked or expired key), 400 body, 403 a job outside the caller's
reach (a key's scope, a user's permissions; audited), 404 job/run (or one the caller may not
see), 409 disabled or already active (with the active run's id), 413 body over 16 KiB, 429 rate
limit (Retry-After), 503 no API key configured. Every trigger, allowed or refused, is audited.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from ..access import RUN, VIEW, allowed_jobs, job_allows, refusal_reason
from ..audit import audit_record, audit_run
from ..models import AuditEntry, Job, JobRun
from ..ratelimit import client_address
from ..runner import JobDisabled, run_trigger
from ..selectors import job_row_json, job_rows, run_json
from .guards import authorize, error

# Largest value of a bigint primary key: a bigger id cannot name a job (and would not fit
# the query's parameter).
MAX_ID = 2**63 - 1


def _job_key(body: dict) -> dict | JsonResponse:
    """The job lookup (``{"name": ...}`` or ``{"pk": ...}``) the body asks for, or the 400/404 answer."""
    unknown = set(body) - {"job", "job_id"}
    if unknown or len(body) != 1:
        return error(400, 'give exactly one of "job" (a name) or "job_id" (a number)', unknown_fields=sorted(unknown))
    if "job" in body:
        name = body["job"]
        # isprintable() also refuses NUL and lone surrogates, which no database would take.
        if not isinstance(name, str) or not name or len(name) > 100 or not name.isprintable():
            return error(400, '"job" must be a job name')
        return {"name": name}
    job_id = body["job_id"]
    if isinstance(job_id, bool) or not isinstance(job_id, int):
        return error(400, '"job_id" must be an integer')
    return {"pk": job_id} if 0 < job_id <= MAX_ID else error(404, "no such job")


@authorize
@require_POST
def jobs_run(request):
    key = _job_key(request.json)
    if isinstance(key, JsonResponse):
        return key
    who = request.api_who
    # Any job by name: a job outside the caller's reach is a 403 (audited), not a silent 404.
    job = Job.objects.filter(**key).first()
    if job is None:
        return error(404, "no such job")
    address = client_address(request)
    if not job_allows(who, RUN, job):
        reason = refusal_reason(who, RUN)
        audit_record(actor=who, action=AuditEntry.Action.RUN, instance=job, address=address, refused=reason)
        return error(403, f"not allowed: {reason}", job=job.name)
    try:
        result = run_trigger(job=job, triggered_by=JobRun.Trigger.API, user=request.api_user)
    except JobDisabled:
        audit_record(actor=who, action=AuditEntry.Action.RUN, instance=job, address=address, refused="job is disabled")
        return error(409, "job is disabled", job=job.name, reason="disabled")
    run = result.run
    audit_run(who=who, job=job, run=run, address=address)
    if not result.queued:
        return error(
            409,
            f"not started: {run.skip_reason}",
            job=job.name,
            reason="active",
            active_run_id=run.blocked_by_id,
            skipped_run_id=run.pk,
        )
    url = reverse("jobs:api-run", args=[run.pk])
    response = JsonResponse({"run_id": run.pk, "job": job.name, "status": run.status, "url": url}, status=202)
    response["Location"] = url
    return response


@authorize
@require_GET
def jobs_status(request):
    now = timezone.now()
    jobs = list(allowed_jobs(request.api_who, VIEW).select_related("webhook_handler").order_by("name"))
    return JsonResponse(
        {"generated_at": now.isoformat(), "jobs": [job_row_json(row) for row in job_rows(now=now, jobs=jobs)]}
    )


@authorize
@require_GET
def run_detail(request, run_id: int):
    visible = allowed_jobs(request.api_who, VIEW)
    run = JobRun.objects.select_related("job").filter(pk=run_id, job__in=visible).first()
    if run is None:
        return error(404, "no such run")
    return JsonResponse(run_json(run))
