"""The staff dashboard: every job at a glance (refreshing itself from ``data.json``), "Run now",
each job's run history, actions and each run's summary, error and output.

Every page needs jobs.view_jobrun (403 without) and shows only the jobs ``jobs.access`` lets the
user see; another job's page or run answers 404. "Run now" is offered and done per ``jobs.access``."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from .. import access
from ..admin import jobs_run_now
from ..audit import job_actions
from ..charts import runs_chart_svg
from ..failures import STATUS_ORDER, apps_of, failed_runs, rows_filtered
from ..health import alert_routing_text, dashboard_health
from ..models import Job, JobRun
from ..ratelimit import client_address
from ..selectors import job_next_runs, job_rows, one_line, runs_page, totals_since
from .live import job_page_json, job_row_page_json, run_page_json, updated_text

HISTORY_PAGE_SIZE = 50
NEXT_RUNS_SHOWN = 5


def wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


view_required = permission_required(access.PERMISSIONS[access.VIEW], raise_exception=True)


def visible_jobs(user):
    return access.allowed_jobs(user, access.VIEW).select_related("webhook_handler").order_by("name")


def job_by_name(user, name: str) -> Job:
    return get_object_or_404(visible_jobs(user), name=name)


def health_context(now) -> dict:
    alerts, nowhere = alert_routing_text()
    return {"health": dashboard_health(now), "alerts": {"text": alerts, "nowhere": nowhere}}


def _dashboard_data(user, now) -> dict:
    rows = job_rows(now=now, jobs=list(visible_jobs(user)))
    runnable = access.allowed_ids(user, access.RUN)
    jobs = [{**job_row_page_json(row), "can_run": row.job.pk in runnable} for row in rows]
    return {
        "generated_at": now.isoformat(),
        "updated": updated_text(now),
        "totals": totals_since(now - timedelta(hours=24)),
        "jobs": jobs,
        **health_context(now),
    }


@staff_member_required
@view_required
@require_GET
def dashboard(request):
    now = timezone.now()
    rows = job_rows(now=now, jobs=list(visible_jobs(request.user)))
    filters = {name: request.GET.get(name, "")[:100] for name in ("status", "app", "q")}
    shown = rows_filtered(rows, status=filters["status"], app=filters["app"], text=filters["q"])
    context = {
        "rows": shown,
        "job_count": len(rows),
        "filters": filters,
        "statuses": list(STATUS_ORDER),
        "apps": apps_of(rows),
        "totals": totals_since(now - timedelta(hours=24)),
        "updated": updated_text(now),
        **health_context(now),
        "refresh_seconds": settings.JOBS_DASHBOARD_REFRESH_SECONDS,
        "runnable": access.allowed_ids(request.user, access.RUN),
    }
    return render(request, "jobs/dashboard.html", context)


@staff_member_required
@view_required
@require_GET
def failures(request):
    """Runs that failed, timed out, were abandoned or wait for their retry: newest first."""
    job_name = request.GET.get("job", "")[:100]
    before = None
    if request.GET.get("before", "").isdigit():
        before = JobRun.objects.filter(pk=int(request.GET["before"])).only("pk", "created_at").first()
    runs, more = failed_runs(before=before, job_name=job_name, jobs=access.allowed_jobs(request.user, access.VIEW))
    for run in runs:
        run.error_line = one_line(run.error) or ("waiting for its retry" if run.status == JobRun.Status.QUEUED else "")
    context = {"runs": runs, "job_name": job_name, "next_before": runs[-1].pk if more else None}
    return render(request, "jobs/failures.html", context)


@staff_member_required
@view_required
@require_GET
def dashboard_data(request):
    return JsonResponse(_dashboard_data(request.user, timezone.now()))


@staff_member_required
@require_POST
def job_run_now(request, name: str):
    """Trigger a manual run; JSON for the page's script, a redirect with a message without it.
    A job the user may not run answers 403, and ``jobs_run_now`` audits the refusal (so it looks
    the job up by name, not among the visible ones: a refused attempt is recorded too)."""
    job = get_object_or_404(Job, name=name)
    started, refused = jobs_run_now(jobs=[job], user=request.user, address=client_address(request))
    if not started and not access.job_allows(request.user, access.RUN, job):
        if wants_json(request):
            return JsonResponse({"ok": False, "message": refused[0]}, status=403)
        raise PermissionDenied(refused[0])
    run = JobRun.objects.filter(job=job).order_by("-created_at", "-id").first()
    if wants_json(request):
        body = {"ok": bool(started), "message": (started or refused)[0]}
        if run is not None and started:
            body.update(run_id=run.pk, status=run.status)
        return JsonResponse(body, status=202 if started else 409)
    for text in started:
        messages.success(request, text)
    for text in refused:
        messages.warning(request, text)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("jobs:dashboard")
    return redirect(back)


def _history(job: Job, status: str, before: JobRun | None):
    """One page of the job's runs, newest first (each knowing its job: no query per run)."""
    runs = job.runs.all()
    if status:
        runs = runs.filter(status=status)
    return runs_page(runs, before=before, size=HISTORY_PAGE_SIZE)


@staff_member_required
@view_required
@require_GET
def job_detail(request, name: str):
    """The job, its next runs, the chart and the history page asked for; as JSON for the page's
    own refresh (``Accept: application/json``, same query string)."""
    job = job_by_name(request.user, name)
    status = request.GET.get("status", "")
    if status and status not in JobRun.Status.values:
        raise Http404("unknown status")
    before = None
    if request.GET.get("before", "").isdigit():
        before = JobRun.objects.filter(job=job, pk=int(request.GET["before"])).only("pk", "created_at").first()
    now = timezone.now()
    runs, more = _history(job, status, before)
    row = job_rows(now=now, jobs=[job])[0]
    latest = runs[0] if runs and before is None else None
    chart = runs_chart_svg(runs, expected_seconds=job.expected_duration_seconds)
    next_runs = job_next_runs(job, now, count=NEXT_RUNS_SHOWN)
    if wants_json(request):
        return JsonResponse(job_page_json(row=row, runs=runs, latest=latest, chart=chart, next_runs=next_runs, now=now))
    context = {
        "job": job,
        "row": row,
        "runs": runs,
        "status": status,
        "statuses": JobRun.Status.choices,
        "next_before": runs[-1].pk if more else None,
        "first_page": before is None,
        "chart": chart,
        "next_runs": next_runs,
        "latest": latest,
        "can_run": access.job_allows(request.user, access.RUN, job),
        "actions": job_actions(job),
        "now": now,
        "updated": updated_text(now),
        "refresh_seconds": settings.JOBS_DASHBOARD_REFRESH_SECONDS,
    }
    return render(request, "jobs/job_detail.html", context)


@staff_member_required
@view_required
@require_GET
def run_detail(request, run_id: int):
    """The run; as JSON for the page's own refresh and the dashboard's "Run now" line."""
    runs = JobRun.objects.select_related("job", "triggered_by_user")
    run = get_object_or_404(runs, pk=run_id, job__in=access.allowed_jobs(request.user, access.VIEW))
    now = timezone.now()
    if wants_json(request):
        return JsonResponse({**run_page_json(run, now), "updated": updated_text(now)})
    context = {
        "run": run,
        "error_line": one_line(run.error),
        "now": now,
        "updated": updated_text(now),
        "refresh_seconds": settings.JOBS_DASHBOARD_REFRESH_SECONDS,
    }
    return render(request, "jobs/run_detail.html", context)
