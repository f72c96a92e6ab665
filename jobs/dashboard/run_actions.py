"""Acting on runs from the dashboard: retry a failed run, run a slot again, backfill a date range,
cancel a queued, waiting or running run.

Each action is a POST with the CSRF token, needs the ``run`` permission on the job (``cancel`` to
cancel; 403 without, audited) and goes through ``jobs.running.run_requests`` (``cancels``); a run or
job the user may not see answers 404."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.core.validators import MaxValueValidator, MinValueValidator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.ratelimit import client_address
from jobs.dashboard.views import job_by_name, view_required
from jobs.models import Backfill, JobRun
from jobs.permissions import access
from jobs.permissions.guards import action_rate_limited
from jobs.running.cancels import CancelRefused, cancel_request
from jobs.running.run_requests import (
    BACKFILL_MAX_SLOTS,
    ActionRefused,
    backfill_rows,
    backfill_slots,
    backfill_start,
    backfill_stop,
    run_retry,
    run_slot_again,
)

# A backfill's range: interval slots count from the Unix epoch, and the day after the last one
# must still be a date Python can hold (9999-12-31 plus one day is not).
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9998, 12, 31)


class BackfillRangeForm(forms.Form):
    """Both days included, in UTC like every time on the dashboard."""

    start = forms.DateField(
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)],
    )
    end = forms.DateField(
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)],
    )

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise forms.ValidationError("The To date must not be before the From date.")
        return data

    def bounds(self) -> tuple[datetime, datetime]:
        start, end = self.cleaned_data["start"], self.cleaned_data["end"]
        begin = datetime(start.year, start.month, start.day, tzinfo=UTC)
        return begin, datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)


def _visible_run(user, run_id: int) -> JobRun:
    runs = JobRun.objects.select_related("job")
    return get_object_or_404(runs, pk=run_id, job__in=access.allowed_jobs(user, access.VIEW))


def _visible_backfill(user, backfill_id: int) -> Backfill:
    backfills = Backfill.objects.select_related("job", "requested_by")
    return get_object_or_404(backfills, pk=backfill_id, job__in=access.allowed_jobs(user, access.VIEW))


def _run_again(request, run_id: int, action):
    run = _visible_run(request.user, run_id)
    try:
        result = action(run=run, user=request.user, address=client_address(request))
    except ActionRefused as exc:
        if not access.job_allows(request.user, access.RUN, run.job):
            raise PermissionDenied(str(exc)) from None
        messages.warning(request, str(exc))
        return redirect("jobs:run", run.pk)
    if not result.queued:
        messages.warning(request, result.message)
        return redirect("jobs:run", run.pk)
    messages.success(request, result.message)
    return redirect("jobs:run", result.run.pk)


@staff_member_required
@view_required
@require_POST
@action_rate_limited
def run_retry_view(request, run_id: int):
    return _run_again(request, run_id, run_retry)


@staff_member_required
@view_required
@require_POST
@action_rate_limited
def run_slot_again_view(request, run_id: int):
    return _run_again(request, run_id, run_slot_again)


@staff_member_required
@view_required
@require_POST
@action_rate_limited
def run_cancel_view(request, run_id: int):
    """Cancel with the reason typed beside the button: a queued run never starts, a running one
    is asked to stop. 403 (audited) without ``jobs.cancel_run`` on the job."""
    run = _visible_run(request.user, run_id)
    reason = request.POST.get("reason", "")
    try:
        result = cancel_request(run=run, who=request.user, reason=reason, address=client_address(request))
    except CancelRefused as exc:
        raise PermissionDenied(str(exc)) from None
    level = messages.success if result.outcome in ("cancelled", "requested") else messages.warning
    level(request, result.message)
    return redirect("jobs:run", run.pk)


@staff_member_required
@view_required
@require_http_methods(["GET", "POST"])
@action_rate_limited
def backfill_new(request, name: str):
    """Step 1 (a POST without ``confirm``): the slots in the range, for confirmation. Step 2 (with
    ``confirm``): the same range is read again and its slots start, one run at a time."""
    job = job_by_name(request.user, name)
    if not access.job_allows(request.user, access.RUN, job):
        raise PermissionDenied(f"{job.name}: not allowed ({access.refusal_reason(request.user, access.RUN)})")
    form = BackfillRangeForm(request.POST or None)
    context = {
        "job": job,
        "form": form,
        "slots": None,
        "max_slots": BACKFILL_MAX_SLOTS,
        "backfills": Backfill.objects.filter(job=job)[:10],
    }
    if request.method == "POST" and form.is_valid():
        try:
            slots = backfill_slots(job, *form.bounds())
            if "confirm" in request.POST:
                # "dry_run": the preview, each slot's run a dry run that shows what it would write.
                dry_run = request.POST.get("confirm") == "dry_run"
                address = client_address(request)
                backfill = backfill_start(job=job, slots=slots, user=request.user, address=address, dry_run=dry_run)
                return redirect("jobs:backfill", backfill.pk)
        except ActionRefused as exc:
            form.add_error(None, str(exc))
        else:
            context["slots"] = slots
    return render(request, "jobs/backfill_new.html", context)


@staff_member_required
@view_required
@require_GET
def backfill_detail(request, backfill_id: int):
    backfill = _visible_backfill(request.user, backfill_id)
    context = {
        "backfill": backfill,
        "rows": backfill_rows(backfill),
        "done": min(backfill.position, len(backfill.slots)),  # slots whose run (and retries) ended
        "running": backfill.status == Backfill.Status.RUNNING,
        "can_run": access.job_allows(request.user, access.RUN, backfill.job),
        "refresh_seconds": settings.JOBS_DASHBOARD_REFRESH_SECONDS,
    }
    return render(request, "jobs/backfill_detail.html", context)


@staff_member_required
@view_required
@require_POST
def backfill_stop_view(request, backfill_id: int):
    backfill = _visible_backfill(request.user, backfill_id)
    if not access.job_allows(request.user, access.RUN, backfill.job):
        raise PermissionDenied(f"{backfill.job.name}: not allowed")
    if backfill_stop(backfill=backfill, user=request.user, address=client_address(request)):
        messages.success(request, f"Backfill #{backfill.pk} stopped: no further slot will start.")
    return redirect("jobs:backfill", backfill.pk)
