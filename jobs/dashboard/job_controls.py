"""A job's controls on the dashboard: "Run with options…", pause (with a reason and an optional
end) and resume.

Each action is a POST with the CSRF token, counted against JOBS_ACTION_RATE_LIMIT (past it the
page says so and nothing is recorded), checked by ``jobs.permissions.access`` (403 without,
audited) and done by the one service: ``run_request`` for a run, ``jobs.scheduling.pauses`` for a
pause. A job the user may not see answers 404."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from core.formatting import format_datetime
from core.ratelimit import client_address
from jobs.dashboard.views import job_by_name, view_required
from jobs.models import Job
from jobs.permissions import access
from jobs.permissions.guards import action_rate_limited
from jobs.running.execution import command_options_hint
from jobs.running.run_options import OptionsRefused, run_options_checked, run_options_from_request
from jobs.running.run_requests import RunOptionsRefused, RunRefused, run_request, run_request_message
from jobs.scheduling.pauses import REASON_MAX_LENGTH, PauseRefused, job_pause, job_resume

# The job's latest slots offered as "as of" choices.
SLOTS_OFFERED = 10


class RunOptionsForm(forms.Form):
    as_of = forms.CharField(
        label="As of",
        required=False,
        max_length=40,
        help_text="A date (2026-03-01, midnight UTC) or a slot's time (2026-03-01T06:00:00+00:00). Empty: now.",
    )
    dry_run = forms.BooleanField(label="Dry run: report what it would do, write nothing", required=False)
    command_options = forms.CharField(
        label="The command's own options (JSON)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"batch_size": 10}'}),
    )

    def __init__(self, *args, job: Job, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job

    def clean(self):
        data = super().clean()
        raw = {"as_of": data.get("as_of") or None, "dry_run": bool(data.get("dry_run"))}
        text = (data.get("command_options") or "").strip()
        if text:
            try:
                extra = json.loads(text)
            except ValueError:
                raise forms.ValidationError({"command_options": 'Not JSON: give an object, e.g. {"batch_size": 10}.'})
            if not isinstance(extra, dict):
                raise forms.ValidationError({"command_options": 'Give a JSON object, e.g. {"batch_size": 10}.'})
            if set(extra) & {"as_of", "dry_run"}:
                raise forms.ValidationError({"command_options": "Set as of and dry run with the fields above."})
            raw.update(extra)
        try:
            data["options"] = run_options_checked(self.job, run_options_from_request(raw))
        except OptionsRefused as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


def recent_slots(job: Job) -> list:
    """The slots of the job's latest scheduled runs, newest first (the index on (job, created))."""
    runs = job.runs.filter(scheduled_for__isnull=False).order_by("-created_at", "-id")
    slots = runs.values_list("scheduled_for", flat=True)[: SLOTS_OFFERED * 2]
    return list(dict.fromkeys(slots))[:SLOTS_OFFERED]


@staff_member_required
@view_required
@require_http_methods(["GET", "POST"])
@action_rate_limited
def job_run_with_options(request, name: str):
    """The form (GET); its POST asks for the run (``run_request``) and opens the run's page."""
    job = job_by_name(request.user, name)
    if not access.job_allows(request.user, access.RUN, job):
        if request.method == "POST":  # asked for: through run_request, whose refusal is audited
            try:
                run_request(job=job, who=request.user, address=client_address(request))
            except RunRefused as exc:
                raise PermissionDenied(str(exc)) from None
        raise PermissionDenied(f"{job.name}: not allowed ({access.refusal_reason(request.user, access.RUN)})")
    form = RunOptionsForm(request.POST or None, job=job)
    if request.method == "POST" and form.is_valid():
        try:
            result = run_request(
                job=job, who=request.user, address=client_address(request), options=form.cleaned_data["options"]
            )
        except RunOptionsRefused as exc:
            form.add_error(None, str(exc))
        except RunRefused as exc:
            raise PermissionDenied(str(exc)) from None
        else:
            if result.queued:
                messages.success(request, run_request_message(job, result))
                return redirect("jobs:run", result.run.pk)
            messages.warning(request, run_request_message(job, result))
            return redirect("jobs:job", job.name)
    context = {
        "job": job,
        "form": form,
        "slots": [(slot.isoformat(), format_datetime(slot)) for slot in recent_slots(job)],
        "options_hint": "" if job.webhook_handler_id else command_options_hint(job.command),
    }
    return render(request, "jobs/run_with_options.html", context, status=400 if form.errors else 200)


class PauseForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=REASON_MAX_LENGTH)
    until = forms.DateTimeField(
        label="Until (UTC, optional)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="The job resumes by itself at this time. Empty: until someone resumes it.",
    )

    def clean_until(self):
        until = self.cleaned_data.get("until")
        if until is not None and until <= timezone.now():
            raise forms.ValidationError("The end of the pause must be in the future.")
        return until


def _back(request, job: Job) -> str:
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("jobs:job", args=[job.name])
    return back


def _toggle_allowed(request, job: Job) -> None:
    if not access.job_allows(request.user, access.TOGGLE, job):
        raise PermissionDenied(f"{job.name}: not allowed ({access.refusal_reason(request.user, access.TOGGLE)})")


@staff_member_required
@view_required
@require_http_methods(["GET", "POST"])
@action_rate_limited
def job_pause_view(request, name: str):
    """The pause form (GET; the job page has it inline too); its POST pauses the job."""
    job = job_by_name(request.user, name)
    form = PauseForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            _toggle_allowed(request, job)
        else:
            data = form.cleaned_data
            try:
                reason, until, address = data["reason"], data["until"], client_address(request)
                changed = job_pause(job=job, who=request.user, reason=reason, until=until, address=address)
            except PauseRefused as exc:
                if exc.forbidden:
                    raise PermissionDenied(str(exc)) from None
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{job.name} paused." if changed else f"{job.name} was already paused so.")
                return redirect(_back(request, job))
    else:
        _toggle_allowed(request, job)
    status = 400 if form.errors else 200
    return render(request, "jobs/pause.html", {"job": job, "form": form}, status=status)


@staff_member_required
@view_required
@require_POST
@action_rate_limited
def job_resume_view(request, name: str):
    job = job_by_name(request.user, name)
    try:
        resumed = job_resume(job=job, who=request.user, address=client_address(request))
    except PauseRefused as exc:
        raise PermissionDenied(str(exc)) from None
    messages.success(request, f"{job.name} resumed." if resumed else f"{job.name} was not paused.")
    return redirect(_back(request, job))
