"""The HTTP trigger API for external schedulers (system cron, Kubernetes CronJob, pg_cron).

    POST /api/jobs/run     {"job": "<name>"} or {"job_id": N}   -> 202 {run_id, status, ...}
                           (+ "options": {"as_of": ..., "dry_run": true, "<command option>": ...})
                           (the old system's {"job_id": "<id or uuid>", "triggered_by": "..."} too)
    GET  /api/jobs/status?status=&app=&group=&q=&limit=&cursor=  -> a page of jobs, counts by status
    GET  /api/runs/<id>                                          -> one run
    POST /api/runs/<id>/cancel  {"reason": "..."}                -> 200 cancelled (it was queued)
                                                                    or 202 asked to stop (running)

Statuses: 401 token (wrong, revoked or expired key, or a key whose owner is deactivated or
deleted), 400 body (a field named twice included), 403 a job outside the caller's reach (a key's
scope, a user's permissions; audited) -- the same answer, naming nothing, whether that job
exists or not --, 404 no such job for a caller who may trigger every job, or a run the caller may
not see, 400 options the job's command does not take (nothing recorded), 409 paused or already
active (with the active run's id), 413 body over 16 KiB, 429 rate limit (Retry-After), 503 no
API key configured. Every trigger, allowed or refused, is audited.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from core.ratelimit import client_address
from jobs.models import ApiKey, AuditEntry, Job, JobRun
from jobs.permissions.access import BOOTSTRAP, CANCEL, PERMISSIONS, RUN, VIEW, allowed_jobs, refusal_reason
from jobs.permissions.audit import audit_record
from jobs.permissions.guards import action_limit_message, action_limit_reached, authorize, error
from jobs.running.cancels import REASON_LENGTH, CancelRefused, cancel_request
from jobs.running.run_options import OptionsRefused, run_options_from_request
from jobs.running.run_requests import RunOptionsRefused, RunRefused, run_request
from jobs.status.listing import (
    PAUSED_OLD_NAME,
    STATUSES,
    JobFilters,
    cursor_decode,
    cursor_encode,
    jobs_filtered,
    status_counts,
)
from jobs.status.rows import job_row_json, job_rows, run_json

# Largest value of a bigint primary key: a bigger id cannot name a job (and would not fit
# the query's parameter).
MAX_ID = 2**63 - 1
# /api/jobs/status: jobs per page unless ?limit= says otherwise, and the most it may say.
STATUS_LIMIT_DEFAULT = 100
STATUS_LIMIT_MAX = 500


# The old system's "triggered_by": who or what sent the trigger, kept in the audit entry only.
TRIGGERED_BY_MAX_LENGTH = 200


def _printable_text(value, max_length: int) -> bool:
    # isprintable() also refuses NUL and lone surrogates, which no database would take.
    return isinstance(value, str) and 0 < len(value) <= max_length and value.isprintable()


def _job_key(body: dict) -> dict | JsonResponse:
    """The job lookup (``{"name": ...}`` or ``{"pk": ...}``) the body asks for, or the 400 answer."""
    unknown = set(body) - {"job", "job_id", "triggered_by", "options"}
    if unknown or len(set(body) & {"job", "job_id"}) != 1:
        return error(400, 'give exactly one of "job" (a name) or "job_id" (a number)', unknown_fields=sorted(unknown))
    if "job" in body:
        name = body["job"]
        if not _printable_text(name, 100):
            return error(400, '"job" must be a job name')
        return {"name": name}
    job_id = body["job_id"]
    if isinstance(job_id, str):
        return _old_job_id_key(job_id)
    if isinstance(job_id, bool) or not isinstance(job_id, int):
        return error(400, '"job_id" must be an integer')
    return {"pk": job_id if 0 < job_id <= MAX_ID else 0}  # no job has the id 0


def _old_job_id_key(text: str) -> dict | JsonResponse:
    """The old system sent ``job_id`` as a string: digits are our id; its UUIDs cannot be one of
    our integer ids, so a UUID names the job whose name is that text (a job imported under its
    old id), and otherwise it is an unknown job like any other."""
    if text.isascii() and text.isdigit() and len(text) <= len(str(MAX_ID)):
        job_id = int(text)
        return {"pk": job_id if 0 < job_id <= MAX_ID else 0}
    try:
        uuid.UUID(text)
    except ValueError:
        return error(400, '"job_id" must be an integer, a string of digits or a UUID')
    return {"name": text}


def _triggered_by(body: dict) -> dict | JsonResponse:
    """The audit entry's note of the old body's ``triggered_by`` (our run's trigger stays ``api``)."""
    if "triggered_by" not in body:
        return {}
    if not _printable_text(body["triggered_by"], TRIGGERED_BY_MAX_LENGTH):
        return error(400, f'"triggered_by" must be text of at most {TRIGGERED_BY_MAX_LENGTH} characters')
    return {"triggered_by": [None, body["triggered_by"]]}


@authorize
@require_POST
def jobs_run(request):
    key = _job_key(request.json)
    if isinstance(key, JsonResponse):
        return key
    about = _triggered_by(request.json)
    if isinstance(about, JsonResponse):
        return about
    try:
        options = run_options_from_request(request.json.get("options"))
    except OptionsRefused as refused:
        return error(400, str(refused), field="options")
    who = request.api_who
    job = Job.objects.filter(**key).first()
    address = client_address(request)
    if job is None:
        return _out_of_reach(who, key, address, about)
    try:
        result = run_request(
            job=job, who=who, address=address, trigger=JobRun.Trigger.API, about=about, options=options
        )
    except RunOptionsRefused as refused:
        return error(400, str(refused), field="options")
    except RunRefused as refused:
        if refused.disabled:
            # "disabled": the API's word for paused since before pause had its name, kept for callers.
            return error(409, "job is paused", job=job.name, reason="disabled", paused=True)
        return error(403, f"not allowed: {_reach(who)}")
    run = result.run
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
    body = {"run_id": run.pk, "job": job.name, "status": run.status, "url": url, "options": run.options}
    if run.behind_active_run:  # overlap "queue one" or "replace": it starts when the active run ends
        body["behind_active_run"] = True
    response = JsonResponse(body, status=202)
    response["Location"] = url
    return response


def _out_of_reach(who, lookup: dict, address: str, about: dict) -> JsonResponse:
    """The answer to a trigger of a job that does not exist (a refused one gets the same 403).

    A caller who may run every job gets 404 for a missing one. Anyone else gets the same 403 as
    for a job they may not run, whose words depend only on the caller: a scoped key learns
    neither a job's name nor whether the name or id it tried exists.
    """
    if _reaches_every_job(who):
        return error(404, "no such job")
    # probing for jobs outside one's reach is worth an audit line too
    refused = f"no job {next(iter(lookup.values()))!r} within reach"[:200]
    audit_record(actor=who, action=AuditEntry.Action.RUN, instance=who, address=address, refused=refused, changes=about)
    return error(403, f"not allowed: {_reach(who)}")


def _reaches_every_job(who) -> bool:
    if who == BOOTSTRAP:
        return True
    if isinstance(who, ApiKey):
        return not who.jobs.exists() and not who.groups.exists()
    return bool(who.is_active and who.is_staff and who.is_superuser)


def _reach(who) -> str:
    """What the caller may trigger, in words that name no job."""
    if isinstance(who, ApiKey):
        return "this API key may trigger only the jobs of its scope; no job of its scope has that name or id"
    if who.has_perm(PERMISSIONS[RUN]):
        return "no job you may run has that name or id"
    return f"missing permission {PERMISSIONS[RUN]}"


@authorize
@require_GET
def jobs_status(request):
    """One page of the jobs the caller may see, by name, after the cursor; filtered like the
    dashboard (status, app, group, q); with the counts by status over every job it may see."""
    limit = _limit(request.GET.get("limit", ""))
    if limit is None:
        return error(400, f"limit must be a whole number from 1 to {STATUS_LIMIT_MAX}")
    if request.GET.get("status", "") not in ("", PAUSED_OLD_NAME, *STATUSES):
        return error(400, f"status must be one of {', '.join(STATUSES)} (or {PAUSED_OLD_NAME}, meaning paused)")
    after = None
    if cursor := request.GET.get("cursor", ""):
        after = cursor_decode(cursor)
        if after is None:
            return error(400, "cursor is not one this API returned")
    now = timezone.now()
    visible = allowed_jobs(request.api_who, VIEW)
    filters = replace(JobFilters.from_query(request.GET), sort="name", order="ascending")
    listed = jobs_filtered(visible.select_related("webhook_handler", "paused_by"), filters, now)
    if after is not None:
        listed = listed.filter(name__gt=after)
    jobs = list(listed[: limit + 1])
    page = job_rows(now=now, jobs=jobs[:limit])
    return JsonResponse(
        {
            "generated_at": now.isoformat(),
            "totals": _old_names(status_counts(visible, now)),
            "jobs": [_api_row(row) for row in page],
            "next_cursor": cursor_encode(jobs[limit - 1].name) if len(jobs) > limit else None,
        }
    )


def _old_names(counts: dict) -> dict:
    """The status API's totals, with paused jobs under ``disabled`` (its word before pause had its
    name, kept for its callers) and ``paused`` both."""
    return {**counts, PAUSED_OLD_NAME: counts.get(Job.Status.PAUSED, 0)}


def _api_row(row) -> dict:
    """A job's row as the status API answers it: a paused job's ``status`` is ``disabled`` (kept
    for existing callers); ``paused`` says who paused it, why and until when."""
    data = job_row_json(row)
    if data["status"] == Job.Status.PAUSED:
        data["status"] = PAUSED_OLD_NAME
    return data


def _limit(raw: str) -> int | None:
    if not raw:
        return STATUS_LIMIT_DEFAULT
    if not raw.isdigit() or not 1 <= int(raw) <= STATUS_LIMIT_MAX:
        return None
    return int(raw)


@authorize
@require_GET
def run_detail(request, run_id: int):
    visible = allowed_jobs(request.api_who, VIEW)
    run = JobRun.objects.select_related("job").filter(pk=run_id, job__in=visible).first()
    if run is None:
        return error(404, "no such run")
    return JsonResponse(run_json(run))


@authorize
@require_POST
def run_cancel(request, run_id: int):
    """Cancel a queued, waiting or running run: 200 (cancelled: it never starts) or 202 (running: asked to
    stop), 403 without the ``cancel`` rule on its job (audited), 404 a run the caller may not see,
    409 a run that has ended or was asked to stop already. A staff session counts against
    JOBS_ACTION_RATE_LIMIT like the dashboard's button."""
    reason = request.json.get("reason")
    if not _printable_text(reason, REASON_LENGTH):
        return error(400, f'"reason" is required: why the run is cancelled, at most {REASON_LENGTH} characters')
    who = request.api_who
    run = JobRun.objects.select_related("job").filter(pk=run_id, job__in=allowed_jobs(who, VIEW)).first()
    if run is None:
        return error(404, "no such run")
    if request.api_user is not None and (retry_after := action_limit_reached(request)) is not None:
        response = error(429, action_limit_message(retry_after), retry_after_seconds=retry_after)
        response["Retry-After"] = str(retry_after)
        return response
    try:
        result = cancel_request(run=run, who=who, reason=reason, address=client_address(request))
    except CancelRefused:
        return error(403, f"not allowed: {refusal_reason(who, CANCEL)}")
    if result.outcome == "ended":
        return error(409, result.message, run_id=run.pk, run_status=result.run.status)
    body = {"run_id": run.pk, "status": result.run.status, "outcome": result.outcome, "message": result.message}
    return JsonResponse(body, status=200 if result.outcome == "cancelled" else 202)
