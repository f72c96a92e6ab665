"""The jobs and webhook handlers CRUD API (docs/api.md, "Jobs and handlers").

    GET    /api/jobs?limit=&cursor=                 -> a page of jobs by name, next_cursor
    POST   /api/jobs                                -> 201 the new job
    GET    /api/jobs/<id>                           -> the job
    PATCH  /api/jobs/<id>                           -> the job with the fields given changed
    PUT    /api/jobs/<id>                           -> the job replaced (fields left out: defaults)
    DELETE /api/jobs/<id>                           -> 204
    and the same under /api/webhook-handlers.

Every write goes through the admin's forms (``jobs.forms``: the allow-list, the command's
config, the cron engine's checks, the outbound guard on a handler's URL), saves the job the way
the admin does (its schedule written to its beat rows by the one writer), and is audited like an
admin edit. Who may do what is ``jobs.permissions.access``. Handler secrets and extra header
values are write-only: no answer carries them.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.http import HttpResponse, JsonResponse
from django.urls import reverse

from core.ratelimit import client_address
from core.redaction import MASK
from jobs.api.bodies import BodyError, handler_form_data, job_form_data
from jobs.catalog.portable import handler_definition, job_definition
from jobs.forms import JobDefinitionForm, WebhookHandlerAdminForm
from jobs.models import AuditEntry, Job, JobRun, WebhookHandler
from jobs.permissions import access
from jobs.permissions.audit import audit_record, snapshot
from jobs.permissions.guards import authorize, error
from jobs.scheduling.schedules import SCHEDULE_ROWS
from jobs.status.listing import cursor_decode, cursor_encode

LIST_LIMIT_DEFAULT = 100
LIST_LIMIT_MAX = 500
ACTIVE = (JobRun.Status.QUEUED, JobRun.Status.RUNNING)


def _methods(**handlers):
    """One URL, one function per HTTP method; any other method answers 405 with Allow."""
    allowed = ", ".join(sorted(name.upper() for name in handlers))

    @authorize
    def view(request, *args, **kwargs):
        handler = handlers.get(request.method.lower())
        if handler is None:
            response = error(405, f"method {request.method} not allowed here; use {allowed}")
            response["Allow"] = allowed
            return response
        return handler(request, *args, **kwargs)

    return view


def _page_params(request) -> tuple[int, str | None] | JsonResponse:
    raw = request.GET.get("limit", "")
    if raw and (not raw.isdigit() or not 1 <= int(raw) <= LIST_LIMIT_MAX):
        return error(400, f"limit must be a whole number from 1 to {LIST_LIMIT_MAX}")
    after = None
    if cursor := request.GET.get("cursor", ""):
        after = cursor_decode(cursor)
        if after is None:
            return error(400, "cursor is not one this API returned")
    return (int(raw) if raw else LIST_LIMIT_DEFAULT), after


def _page(rows, limit: int, after: str | None, as_json) -> JsonResponse:
    if after is not None:
        rows = rows.filter(name__gt=after)
    found = list(rows.order_by("name")[: limit + 1])
    return JsonResponse(
        {
            "results": [as_json(row) for row in found[:limit]],
            "next_cursor": cursor_encode(found[limit - 1].name) if len(found) > limit else None,
        }
    )


def _invalid(form) -> JsonResponse:
    """400 with the form's errors by field; 409 when the only trouble is a name already taken.
    Messages are the form's own, which never repeat a secret."""
    fields = {name: [str(message) for message in messages] for name, messages in form.errors.items()}
    codes = {error.code for error in form.errors.as_data().get("name", [])}
    if set(fields) == {"name"} and "unique" in codes:
        return error(409, "a row with this name exists", fields=fields)
    if "new_secret" in fields:
        fields["secret"] = fields.pop("new_secret")
    return error(400, "invalid fields", fields=fields)


def _refused(who, action: str, instance, address: str, reason: str) -> JsonResponse:
    audit_record(actor=who, action=action, instance=instance, address=address, refused=reason[:200])
    return error(403, f"not allowed: {reason}")


# --- jobs -------------------------------------------------------------------------------------


def job_json(job: Job) -> dict:
    return {
        "id": job.pk,
        **job_definition(job),
        "href": reverse("jobs:api-job", args=[job.pk]),
        "schedule_description": job.schedule_description if (job.cron_expression or job.interval_seconds) else "",
        "next_fire_at": job.next_fire_at.isoformat() if job.next_fire_at else None,
        "last_run_at": job.last_run_at.isoformat() if job.last_run_at else None,
        "last_run_status": job.last_run_status,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }


def _visible_jobs(who):
    return access.allowed_jobs(who, access.VIEW).select_related("webhook_handler", *SCHEDULE_ROWS)


def _jobs_list(request):
    params = _page_params(request)
    if isinstance(params, JsonResponse):
        return params
    limit, after = params
    return _page(_visible_jobs(request.api_who), limit, after, job_json)


def _jobs_create(request):
    who, address = request.api_who, client_address(request)
    if not access.may_add_jobs(who):
        name = request.json.get("name")
        job = Job(name=name if isinstance(name, str) else "")
        return _refused(who, AuditEntry.Action.CREATE, job, address, _write_reason(who, access.ADD_JOB))
    return _job_save(request, Job(), base=job_definition(Job()), status=201)


def _job_or_404(request, job_id: int) -> Job | JsonResponse:
    job = _visible_jobs(request.api_who).filter(pk=job_id).first()
    return job if job is not None else error(404, "no such job")


def _job_read(request, job_id: int):
    job = _job_or_404(request, job_id)
    return job if isinstance(job, JsonResponse) else JsonResponse(job_json(job))


def _job_patch(request, job_id: int):
    return _job_change(request, job_id, partial=True)


def _job_put(request, job_id: int):
    return _job_change(request, job_id, partial=False)


def _job_change(request, job_id: int, *, partial: bool):
    job = _job_or_404(request, job_id)
    if isinstance(job, JsonResponse):
        return job
    who = request.api_who
    if not access.job_allows(who, access.CHANGE, job):
        reason = _write_reason(who, access.PERMISSIONS[access.CHANGE])
        return _refused(who, AuditEntry.Action.UPDATE, job, client_address(request), reason)
    base = job_definition(job if partial else Job())
    # Enabling or disabling is its own permission (jobs.toggle_job), as in the admin's actions.
    enabled = request.json.get("enabled", job.enabled if partial else base["enabled"])
    if isinstance(enabled, bool) and enabled != job.enabled and not access.job_allows(who, access.TOGGLE, job):
        reason = _write_reason(who, access.PERMISSIONS[access.TOGGLE])
        action = AuditEntry.Action.ENABLE if enabled else AuditEntry.Action.DISABLE
        return _refused(who, action, job, client_address(request), reason)
    return _job_save(request, job, base=base, status=200)


def _job_save(request, job: Job, *, base: dict, status: int):
    """Validate the body with the admin's job form and save it as the admin does, audited."""
    try:
        data = job_form_data(request.json, base)
    except BodyError as exc:
        return error(400, str(exc), fields=exc.fields)
    form = JobDefinitionForm(data=data, instance=job)
    if not form.is_valid():
        return _invalid(form)
    created = job.pk is None
    before = {} if created else job_definition(Job.objects.select_related(*SCHEDULE_ROWS).get(pk=job.pk))
    try:
        with transaction.atomic():
            job = form.save()
            after = job_definition(Job.objects.select_related("webhook_handler", *SCHEDULE_ROWS).get(pk=job.pk))
            changes = {name: [before.get(name), value] for name, value in after.items() if before.get(name) != value}
            audit_record(
                actor=request.api_who,
                action=AuditEntry.Action.CREATE if created else AuditEntry.Action.UPDATE,
                instance=job,
                address=client_address(request),
                changes=changes,
            )
    except IntegrityError:
        return error(409, "a job with this name exists", fields={"name": ["Job with this Name already exists."]})
    job = _visible_jobs(access.BOOTSTRAP).get(pk=job.pk)
    response = JsonResponse(job_json(job), status=status)
    if created:
        response["Location"] = reverse("jobs:api-job", args=[job.pk])
    return response


def _job_delete(request, job_id: int):
    job = _job_or_404(request, job_id)
    if isinstance(job, JsonResponse):
        return job
    who, address = request.api_who, client_address(request)
    if not access.deletable_jobs(who).filter(pk=job.pk).exists():
        reason = _write_reason(who, access.DELETE_JOB)
        return _refused(who, AuditEntry.Action.DELETE, job, address, reason)
    if active := JobRun.objects.filter(job=job, status__in=ACTIVE).values_list("pk", flat=True).first():
        return error(409, "the job has an active run; cancel it or wait for it to end", active_run_id=active)
    with transaction.atomic():
        audit_record(actor=who, action=AuditEntry.Action.DELETE, instance=job, address=address)
        job.delete()  # one delete() so the job's PeriodicTask goes with it (post_delete)
    return HttpResponse(status=204)


def _write_reason(who, permission: str) -> str:
    """Why ``who`` (never the bootstrap key, which may write) is refused a write."""
    if not hasattr(who, "has_perm"):
        return "API keys may read and trigger jobs, not change them (use a staff session or JOBS_SECRET_KEY)"
    if who.has_perm(permission):
        return "job limited to other operator groups"
    return f"missing permission {permission}"


jobs_collection = _methods(get=_jobs_list, post=_jobs_create)
job_item = _methods(get=_job_read, patch=_job_patch, put=_job_put, delete=_job_delete)


# --- webhook handlers -------------------------------------------------------------------------


def handler_json(handler: WebhookHandler) -> dict:
    """A handler without its secret: whether one is set, and its header names with masked values."""
    return {
        "id": handler.pk,
        **handler_definition(handler),
        "extra_headers": {name: MASK for name in handler.extra_headers or {}},
        "secret_set": bool(handler.secret),
        "href": reverse("jobs:api-handler", args=[handler.pk]),
        "created_at": handler.created_at.isoformat(),
        "updated_at": handler.updated_at.isoformat(),
    }


# A refused handler write is audited under the action it tried.
HANDLER_AUDIT_ACTIONS = {
    "add": AuditEntry.Action.CREATE,
    "change": AuditEntry.Action.UPDATE,
    "delete": AuditEntry.Action.DELETE,
}


def _handler_guard(request, action: str, handler_id: int | None = None) -> JsonResponse | None:
    who = request.api_who
    if access.may_handlers(who, action):
        return None
    if hasattr(who, "has_perm"):
        reason = f"missing permission {access.HANDLER_PERMISSIONS[action]}"
    else:
        reason = "API keys may not read or change webhook handlers"
    if action in HANDLER_AUDIT_ACTIONS:
        handler = WebhookHandler.objects.filter(pk=handler_id).first() if handler_id else None
        if handler is None:
            name = request.json.get("name") if isinstance(getattr(request, "json", None), dict) else ""
            handler = WebhookHandler(name=name if isinstance(name, str) else "")
        audit_record(
            actor=who,
            action=HANDLER_AUDIT_ACTIONS[action],
            instance=handler,
            address=client_address(request),
            refused=reason,
        )
    return error(403, f"not allowed: {reason}")


def _handlers_list(request):
    if refused := _handler_guard(request, "view"):
        return refused
    params = _page_params(request)
    if isinstance(params, JsonResponse):
        return params
    limit, after = params
    return _page(WebhookHandler.objects.all(), limit, after, handler_json)


def _handler_or_404(request, handler_id: int, action: str) -> WebhookHandler | JsonResponse:
    if refused := _handler_guard(request, action, handler_id):
        return refused
    handler = WebhookHandler.objects.filter(pk=handler_id).first()
    return handler if handler is not None else error(404, "no such webhook handler")


def _handler_read(request, handler_id: int):
    handler = _handler_or_404(request, handler_id, "view")
    return handler if isinstance(handler, JsonResponse) else JsonResponse(handler_json(handler))


def _handlers_create(request):
    if refused := _handler_guard(request, "add"):
        return refused
    base = _handler_base(WebhookHandler(), keep_headers=False)
    return _handler_save(request, WebhookHandler(), base=base, status=201)


def _handler_patch(request, handler_id: int):
    handler = _handler_or_404(request, handler_id, "change")
    if isinstance(handler, JsonResponse):
        return handler
    return _handler_save(request, handler, base=_handler_base(handler, keep_headers=True), status=200)


def _handler_put(request, handler_id: int):
    handler = _handler_or_404(request, handler_id, "change")
    if isinstance(handler, JsonResponse):
        return handler
    base = {**_handler_base(WebhookHandler(), keep_headers=False), "name": handler.name}
    return _handler_save(request, handler, base=base, status=200)


def _handler_base(handler: WebhookHandler, *, keep_headers: bool) -> dict:
    """What the form starts from: the handler's values (PATCH) or the defaults (create, PUT);
    stored header values stand as the mask, which the form reads as "keep"."""
    headers = {name: MASK for name in handler.extra_headers or {}} if keep_headers else {}
    return {**handler_definition(handler), "extra_headers": headers}


def _handler_save(request, handler: WebhookHandler, *, base: dict, status: int):
    try:
        data = handler_form_data(request.json, base)
    except BodyError as exc:
        return error(400, str(exc), fields=exc.fields)
    form = WebhookHandlerAdminForm(data=data, instance=handler)
    if not form.is_valid():
        return _invalid(form)
    fields = form.audited_fields
    created = handler.pk is None
    before = snapshot(WebhookHandler.objects.get(pk=handler.pk), fields) if not created else {}
    try:
        with transaction.atomic():
            handler = form.save()
            audit_record(
                actor=request.api_who,
                action=AuditEntry.Action.CREATE if created else AuditEntry.Action.UPDATE,
                instance=handler,
                before=before,
                fields=fields,
                address=client_address(request),
            )
    except IntegrityError:
        return error(409, "a webhook handler with this name exists")
    response = JsonResponse(handler_json(handler), status=status)
    if created:
        response["Location"] = reverse("jobs:api-handler", args=[handler.pk])
    return response


def _handler_delete(request, handler_id: int):
    handler = _handler_or_404(request, handler_id, "delete")
    if isinstance(handler, JsonResponse):
        return handler
    try:
        with transaction.atomic():
            audit_record(
                actor=request.api_who,
                action=AuditEntry.Action.DELETE,
                instance=handler,
                address=client_address(request),
            )
            handler.delete()
    except ProtectedError:
        count = Job.objects.filter(webhook_handler=handler).count()
        return error(409, f"{count} job(s) call this handler; change or delete them first", jobs=count)
    return HttpResponse(status=204)


handlers_collection = _methods(get=_handlers_list, post=_handlers_create)
handler_item = _methods(get=_handler_read, patch=_handler_patch, put=_handler_put, delete=_handler_delete)
