"""The raw beat schedule: every PeriodicTask, pause/resume and unschedule.

Pause and resume count against JOBS_ACTION_RATE_LIMIT like every person's action: past it the
page says so and nothing is recorded.
Destructive actions need a recent password entry (here and in the admin, which uses
``reauthenticate_redirect``) and a second, confirming POST; every action is audited."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_celery_beat.models import PeriodicTask

from core.ratelimit import client_address
from jobs.forms import ReauthenticateForm
from jobs.permissions import access
from jobs.permissions.guards import (
    action_rate_limited,
    has_recent_login,
    mark_password_entered,
    recent_login_required,
    schedule_manager_required,
)
from jobs.scheduling.cron import describe_schedule, schedule_problem
from jobs.scheduling.periodic_task_actions import (
    ScheduleActionRefused,
    owning_job,
    periodic_task_unschedule,
    periodic_tasks_listing,
    periodic_tasks_set_enabled,
)
from jobs.status.rows import job_next_runs

NEXT_RUNS_SHOWN = 3


def _schedule_words(task: PeriodicTask) -> str:
    if task.crontab_id:
        c = task.crontab
        cron = f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"
        return f"{cron} — {describe_schedule(cron, None, str(c.timezone))}"
    if task.interval_id:
        return str(task.interval)
    return str(task.solar or task.clocked or "-")


@staff_member_required
@permission_required("django_celery_beat.view_periodictask", raise_exception=True)
@require_GET
def schedule(request):
    tasks = list(periodic_tasks_listing())
    visible = access.allowed_ids(request.user, access.VIEW)
    now = timezone.now()
    rows = []
    for task in tasks:
        job = owning_job(task)
        rows.append(
            {
                "task": task,
                "job": job,
                "schedule": _schedule_words(task),
                "next_runs": job_next_runs(job, now, count=NEXT_RUNS_SHOWN) if job else [],
                # A job whose stored schedule never fires (raw SQL, a restore) says why on its row.
                "problem": schedule_problem(job.cron_expression, job.interval_seconds) if job else None,
            }
        )
    # A job the user may not see has no row here either.
    rows = [row for row in rows if row["job"] is None or row["job"].pk in visible]
    context = {
        "rows": rows,
        "recent_login": has_recent_login(request),
        "can_manage": access.may_manage_schedule(request.user),
    }
    return render(request, "jobs/schedule.html", context)


@staff_member_required
@schedule_manager_required
@require_POST
@action_rate_limited
def schedule_set_enabled(request, pk: int, enabled: bool):
    task = get_object_or_404(PeriodicTask.objects.select_related("job"), pk=pk)
    try:
        changed = periodic_tasks_set_enabled(
            tasks=[task], enabled=enabled, user=request.user, address=client_address(request)
        )
    except ScheduleActionRefused as exc:
        messages.error(request, str(exc))
        return redirect("jobs:schedule")
    verb = "resumed" if enabled else "paused"
    messages.success(request, f"{task.name} {verb}." if changed else f"{task.name} was already {verb}.")
    return redirect("jobs:schedule")


def reauthenticate_redirect(request, back: str):
    """To the password page, then back to ``back``: for surfaces whose "back" is not the schedule
    page (the admin), which ``recent_login_required`` sends to."""
    messages.warning(
        request,
        f"Enter your password again: deleting a schedule needs a login within the last "
        f"{settings.RECENT_LOGIN_MINUTES} minutes.",
    )
    return redirect(f"{reverse('jobs:reauthenticate')}?{urlencode({'next': back})}")


def _confirmation(request, *, title: str, question: str, names: list[str], button: str):
    """The page a destructive action's first POST answers with; only its own POST acts."""
    context = {"title": title, "question": question, "names": names, "button": button, "action": request.path}
    return render(request, "jobs/schedule_confirm.html", context)


def _confirmed(request) -> bool:
    return request.POST.get("confirm") == "yes"


@staff_member_required
@schedule_manager_required
@recent_login_required
@require_POST
def schedule_unschedule(request, pk: int):
    task = get_object_or_404(PeriodicTask.objects.select_related("job"), pk=pk)
    if owning_job(task) is None and not _confirmed(request):
        return _confirmation(
            request,
            title="Unschedule a task",
            question="Delete this beat task? Beat stops sending it within seconds; this cannot be undone.",
            names=[task.name],
            button="Unschedule",
        )
    try:
        periodic_task_unschedule(task=task, user=request.user)
    except ScheduleActionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{task.name} unscheduled (deleted).")
    return redirect("jobs:schedule")


@staff_member_required
@require_http_methods(["GET", "POST"])
def reauthenticate(request):
    """Ask for the password again before a destructive action; back to ``next`` afterwards."""
    target = request.POST.get("next") or request.GET.get("next") or reverse("jobs:schedule")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("jobs:schedule")
    form = ReauthenticateForm(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        mark_password_entered(request)
        messages.success(request, "Thanks. Destructive actions are allowed again for a while.")
        return redirect(target)
    return render(request, "jobs/reauthenticate.html", {"form": form, "next": target})
