"""The staff dashboard: every job at a glance (refreshing itself from ``data.json``), "Run now",
each job's run history, actions and each run's summary, error and output.

Every page needs jobs.view_jobrun (403 without) and shows only the jobs ``jobs.permissions.access`` lets the
user see; another job's page or run answers 404. "Run now" is offered and done per ``jobs.permissions.access``."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST

from core.formatting import format_duration, one_line
from core.ratelimit import client_address
from jobs.catalog.validation import configured_queues
from jobs.dashboard.charts import runs_chart_svg
from jobs.dashboard.live import dashboard_json, job_page_json, run_page_json, updated_text
from jobs.dashboard.versions import job_versions_context
from jobs.models import Job, JobRun
from jobs.operations.health import alert_routing_text, dashboard_health
from jobs.permissions import access
from jobs.permissions.audit import job_actions
from jobs.permissions.guards import action_rate_limited
from jobs.running.run_requests import jobs_run_now
from jobs.scheduling.schedules import SCHEDULE_ROWS
from jobs.scheduling.windows import window_slots
from jobs.status.failures import with_lineage
from jobs.status.listing import SORTS, STATUSES, JobFilters, apps_among, group_names, jobs_filtered, status_counts
from jobs.status.queues import queue_depths
from jobs.status.rows import job_next_runs, job_rows, runs_page, totals_since

HISTORY_PAGE_SIZE = 50
PAGE_SIZE = 50  # jobs per dashboard page
TOTALS_KEY = "jobs:dashboard:totals"
NEXT_RUNS_SHOWN = 5


def wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


view_required = permission_required(access.PERMISSIONS[access.VIEW], raise_exception=True)


def visible_jobs(user):
    jobs = access.allowed_jobs(user, access.VIEW).select_related("webhook_handler", "paused_by", *SCHEDULE_ROWS)
    return jobs.order_by("name")


def job_by_name(user, name: str) -> Job:
    return get_object_or_404(visible_jobs(user), name=name)


def health_context(now) -> dict:
    alerts, nowhere = alert_routing_text()
    return {
        "health": dashboard_health(now),
        "alerts": {"text": alerts, "nowhere": nowhere},
        "queues": queues_shown(now),
    }


def queues_shown(now) -> list[dict]:
    """Each queue's card: how many runs wait in it and for how long the oldest has waited."""
    shown = []
    for queue in queue_depths(now, configured_queues()):
        age = queue.oldest_age_seconds(now)
        text = f"oldest waiting {format_duration(age)}" if queue.waiting else "none waiting"
        if not queue.configured:
            text += "; not configured: no worker takes it"
        shown.append({"name": queue.name, "waiting": queue.waiting, "oldest_age_seconds": age, "text": text})
    return shown


def dashboard_page(request, now) -> dict:
    """What the dashboard and its ``data.json`` show for the address's filters and page: counts
    by status over every visible job, and one page of job rows (the only per-job work)."""
    visible = access.allowed_jobs(request.user, access.VIEW)
    filters = JobFilters.from_query(request.GET)
    # The order is found on ids only (a narrow sort however many jobs match), then the page's
    # jobs are read whole.
    ids = jobs_filtered(visible, filters, now).values_list("pk", flat=True)
    page = Paginator(ids, PAGE_SIZE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    by_id = visible.select_related("webhook_handler", "paused_by", *SCHEDULE_ROWS).in_bulk(shown)
    jobs = [by_id[pk] for pk in shown if pk in by_id]
    rows = job_rows(now=now, jobs=jobs)
    runnable = access.allowed_jobs(request.user, access.RUN).filter(pk__in=[job.pk for job in jobs])
    toggleable = access.allowed_jobs(request.user, access.TOGGLE).filter(pk__in=[job.pk for job in jobs])
    return {
        "filters": filters,
        "page": page,
        "rows": rows,
        "runnable": set(runnable.values_list("pk", flat=True)),
        "toggleable": set(toggleable.values_list("pk", flat=True)),
        "counts": status_counts(visible, now),
        "totals": totals_of_the_day(now, housekeeping=with_housekeeping(request)),
        "updated": updated_text(now),
        **health_context(now),
    }


def with_housekeeping(request) -> bool:
    """The address asks for the upkeep jobs' runs too (``?housekeeping=1``): left out otherwise."""
    return request.GET.get("housekeeping", "") == "1"


def totals_of_the_day(now, *, housekeeping: bool = False) -> dict:
    """The last 24 hours' run totals, shared by every reader for JOBS_DASHBOARD_TOTALS_SECONDS:
    counting a day of runs reads every run of the day, too much for each 5-second refresh of
    each reader. Without the cache (Redis down) they are counted for each request."""
    seconds = settings.JOBS_DASHBOARD_TOTALS_SECONDS
    key = f"{TOTALS_KEY}:housekeeping" if housekeeping else TOTALS_KEY
    try:
        totals = cache.get(key) if seconds > 0 else None
    except Exception:  # the cache is an optimisation: never a failed page
        totals = None
    if totals is None:
        totals = totals_since(now - timedelta(hours=24), housekeeping=housekeeping)
        try:
            if seconds > 0:
                cache.set(key, totals, seconds)
        except Exception:
            pass
    return totals


def page_links(filters: JobFilters, page, keep: dict | None = None) -> dict:
    """The addresses of the first, previous, next and last pages, keeping the filters, sort and
    ``keep`` (the housekeeping choice)."""
    keep = keep or {}
    links = {}
    if page.has_previous():
        links.update(
            first=filters.query(page=1, **keep), previous=filters.query(page=page.previous_page_number(), **keep)
        )
    if page.has_next():
        last = page.paginator.num_pages
        links.update(next=filters.query(page=page.next_page_number(), **keep), last=filters.query(page=last, **keep))
    return {name: "?" + urlencode(query) for name, query in links.items()}


def sort_links(filters: JobFilters, keep: dict | None = None) -> dict:
    """Each sortable column's address: ascending, or descending when it is already ascending."""
    links = {}
    for key in SORTS:
        order = "descending" if filters.sort == key and filters.order == "ascending" else "ascending"
        sorted_by = JobFilters(**{**filters.__dict__, "sort": key, "order": order})
        links[key] = "?" + urlencode(sorted_by.query(**(keep or {})))
    return links


def view_links(filters: JobFilters, *, housekeeping: bool) -> dict:
    """Links whose counts depend on the housekeeping choice carry it, so a number and the page
    it leads to count the same runs: the failures page and the toggle itself (which keeps the
    filters)."""
    keep = {"housekeeping": "1"} if housekeeping else {}
    failures = reverse("jobs:failures") + ("?housekeeping=1" if housekeeping else "")
    return {
        "keep": keep,
        "failures_link": failures,
        "housekeeping_toggle": "?" + urlencode(filters.query(**({} if housekeeping else {"housekeeping": "1"}))),
    }


@staff_member_required
@view_required
@require_GET
def dashboard(request):
    now = timezone.now()
    data = dashboard_page(request, now)
    visible = access.allowed_jobs(request.user, access.VIEW)
    context = {
        **data,
        "statuses": STATUSES,
        "apps": apps_among(visible),
        "groups": group_names(),
        "refresh_seconds": settings.JOBS_DASHBOARD_REFRESH_SECONDS,
        "housekeeping": with_housekeeping(request),
    }
    links = view_links(data["filters"], housekeeping=context["housekeeping"])
    context.update(
        links,
        page_links=page_links(data["filters"], data["page"], links["keep"]),
        sort_links=sort_links(data["filters"], links["keep"]),
    )
    return render(request, "jobs/dashboard.html", context)


@staff_member_required
@view_required
@require_GET
def dashboard_data(request):
    """The dashboard's refresh: the counts and the rows of the page the address names (same
    filters, sort and page), never the whole fleet; with ``rows=html`` also the table's rows."""
    now = timezone.now()
    data = dashboard_page(request, now)
    # The rows as the page draws them, only when the script asks (the page's jobs changed).
    rows_html = render_to_string("jobs/dashboard_rows.html", data, request=request) if "rows" in request.GET else None
    return JsonResponse(dashboard_json(data, rows_html=rows_html, generated_at=now))


@staff_member_required
@require_POST
@action_rate_limited
def job_run_now_view(request, name: str):
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
    runs = with_lineage(job.runs.select_related("acknowledged_by"))
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
        # Which of the next runs a blackout window holds, and what the job waits for.
        "window_slots": (held := window_slots(job, next_runs, now=now)),
        "any_held": any(name for _, name in held),
        "waits_for": list(job.dependencies.order_by("upstream__name").values_list("upstream__name", flat=True)),
        "latest": latest,
        "can_run": access.job_allows(request.user, access.RUN, job),
        "can_toggle": access.job_allows(request.user, access.TOGGLE, job),
        "actions": job_actions(job),
        **job_versions_context(request, job),
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
    runs = with_lineage(JobRun.objects.select_related("job", "triggered_by_user", "acknowledged_by", "backfill"))
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
        "cancel_grace_seconds": f"{settings.JOBS_CANCEL_GRACE_SECONDS:g}",
    }
    return render(request, "jobs/run_detail.html", context)
