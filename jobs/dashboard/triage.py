"""The failures page, built for triage: open failures filtered by job, app, status and days (all in
the address), a page at a time, refreshing itself; retry or acknowledge a selection at once, and
acknowledge one failure from its run's page.

Every action is a POST with the CSRF token and goes through ``jobs.running.triage`` (the ``run``
rule per job, audited per run); a run the user may not see is never acted on."""

from __future__ import annotations

from dataclasses import replace

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST

from core.formatting import one_line
from core.ratelimit import client_address
from jobs.dashboard.live import updated_text
from jobs.dashboard.views import view_required, wants_json
from jobs.models import JobRun
from jobs.permissions import access
from jobs.permissions.guards import action_rate_limited
from jobs.running.run_requests import ActionRefused
from jobs.running.triage import SELECTION_LIMIT, run_acknowledge, runs_acknowledge, runs_retry
from jobs.status.failures import FAILURE_FILTER_STATUSES, FailureFilters, failed_runs
from jobs.status.listing import apps_among


def failures_page(request) -> dict:
    """One page of the open failures the address asks for, each with what the reader may do."""
    filters = FailureFilters.from_query(request.GET)
    visible = access.allowed_jobs(request.user, access.VIEW)
    before = None
    if request.GET.get("before", "").isdigit():
        before = JobRun.objects.filter(pk=int(request.GET["before"])).only("pk", "created_at").first()
    runs, more = failed_runs(filters=filters, before=before, jobs=visible)
    runnable = access.allowed_jobs(request.user, access.RUN).filter(pk__in={run.job_id for run in runs})
    runnable_ids = set(runnable.values_list("pk", flat=True))
    for run in runs:
        run.error_line = one_line(run.error) or ("waiting for its retry" if run.status == JobRun.Status.QUEUED else "")
        run.can_act = run.job_id in runnable_ids
    older = "?" + urlencode(filters.query(before=runs[-1].pk)) if more else None
    return {"filters": filters, "runs": runs, "older": older, "visible": visible}


@staff_member_required
@view_required
@require_GET
def failures(request):
    """Open failures newest first; as JSON (``Accept: application/json``, same address) for the
    page's own refresh: the table's rows drawn by the page's template."""
    data = failures_page(request)
    now = timezone.now()
    if wants_json(request):
        rows = render_to_string("jobs/failures_rows.html", data, request=request)
        return JsonResponse({"updated": updated_text(now), "rows_html": rows, "ids": [run.pk for run in data["runs"]]})
    context = {
        **data,
        "apps": apps_among(data["visible"]),
        "statuses": FAILURE_FILTER_STATUSES,
        "here": request.get_full_path(),
        "housekeeping_toggle": "?"
        + urlencode(replace(data["filters"], housekeeping=not data["filters"].housekeeping).query()),
        "updated": updated_text(now),
        "refresh_seconds": settings.JOBS_DASHBOARD_REFRESH_SECONDS,
    }
    return render(request, "jobs/failures.html", context)


def _back(request, default: str) -> str:
    back = request.POST.get("next", "")
    return back if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}) else default


def _selected_runs(request) -> list[JobRun]:
    """The selected runs in the order they were listed (at most a page). Not narrowed to the jobs
    the user may see: each action checks its own rule, and a refusal is audited and said."""
    ids = [int(value) for value in request.POST.getlist("run") if value.isdigit()][:SELECTION_LIMIT]
    runs = JobRun.objects.select_related("job").in_bulk(ids)
    return [runs[pk] for pk in ids if pk in runs]


def _unseen_said_plainly(outcomes, user) -> list:
    """A refusal on a job the user may not see names the run only, not the job."""
    jobs = access.allowed_jobs(user, access.VIEW).filter(pk__in={outcome.run.job_id for outcome in outcomes})
    visible = set(jobs.values_list("pk", flat=True))
    for outcome in outcomes:
        if outcome.run.job_id not in visible:
            outcome.message = f"#{outcome.run.pk}: not allowed"
    return outcomes


@staff_member_required
@view_required
@require_POST
@action_rate_limited
def failures_act(request):
    """Retry (``action=retry``) or acknowledge (``action=acknowledge``, with ``note``) the selected
    failures; each outcome is said on the page it returns to."""
    runs = _selected_runs(request)
    address = client_address(request)
    if not runs:
        messages.warning(request, "Select at least one failure.")
    elif request.POST.get("action") == "acknowledge":
        note = request.POST.get("note", "")
        _report(request, runs_acknowledge(runs=runs, user=request.user, note=note, address=address))
    else:
        _report(request, runs_retry(runs=runs, user=request.user, address=address))
    return redirect(_back(request, reverse("jobs:failures")))


def _report(request, outcomes) -> None:
    _unseen_said_plainly(outcomes, request.user)
    for outcome in outcomes:
        (messages.success if outcome.done else messages.warning)(request, outcome.message)


@staff_member_required
@view_required
@require_POST
@action_rate_limited
def run_acknowledge_view(request, run_id: int):
    """Acknowledge one failure with a note; 403 (audited) without the job's ``run`` rule."""
    visible = access.allowed_jobs(request.user, access.VIEW)
    run = get_object_or_404(JobRun.objects.select_related("job"), pk=run_id, job__in=visible)
    try:
        run_acknowledge(run=run, user=request.user, note=request.POST.get("note", ""), address=client_address(request))
    except ActionRefused as exc:
        if not access.job_allows(request.user, access.RUN, run.job):
            raise PermissionDenied(str(exc)) from None
        messages.warning(request, str(exc))
    else:
        messages.success(request, f"Run #{run.pk} acknowledged: it left the failures list.")
    return redirect(_back(request, reverse("jobs:run", args=[run.pk])))
