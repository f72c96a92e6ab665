"""django-celery-beat's own admin pages, behind the rule every other way in follows (jobs.permissions.access).

A job's PeriodicTask and the crontab or interval row it uses hold the job's schedule
(jobs.scheduling.schedules). They are edited here through the job form's checks (the cron
engine's, each message beside its field) and the job's rule: changing a row needs the change rule
(jobs.change_job and the job's operator groups) for every job the row schedules, and turning a
job's task on or off its toggle rule too. A refused edit changes nothing, says why with a link to
the job, and is audited. Saving moves every job the row schedules at once: a crontab row several
jobs' tasks share is their one schedule in django-celery-beat's meaning, so editing it moves them
all (to change one job alone, edit that job's schedule: it gets a row of its own).

Of a job's task only the schedule, the enabled flag and the description are edited here: what it
runs is the job's. It is deleted with the job, never here; a crontab or interval row a job uses is
not deleted here either; the bulk actions leave both out and say so. A job's task is listed only
to those who may see the job (to others it does not exist).

Tasks no job owns keep django-celery-beat's pages, audited, with two limits: the task they name is
one of ``schedulable_task_names`` (never the job engine's own), and deleting one needs
jobs.manage_schedule and a recent login, as on the schedule page.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.db.models import Q, QuerySet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from core.admin_columns import OneFormatMixin
from core.ratelimit import client_address
from jobs.admin.audited import AuditedAdmin
from jobs.dashboard.schedule import reauthenticate_redirect
from jobs.models import AuditEntry, Job
from jobs.permissions import access
from jobs.permissions.audit import audit_record
from jobs.permissions.guards import has_recent_login
from jobs.scheduling.periodic_task_actions import periodic_tasks_set_enabled, schedulable_task_names
from jobs.scheduling.schedule_edits import row_errors, row_jobs
from jobs.scheduling.schedules import PERIODIC_TASK_PREFIX

# Jobs named (with a link each) in a note; the rest are counted.
JOBS_NAMED = 10

for model in (PeriodicTask, CrontabSchedule, IntervalSchedule):
    admin.site.unregister(model)


def visible_tasks(tasks: QuerySet[PeriodicTask], user) -> QuerySet[PeriodicTask]:
    """The tasks no job owns, and those of the jobs ``user`` may see."""
    return tasks.filter(Q(job__isnull=True) | Q(job__in=access.allowed_jobs(user, access.VIEW)))


def job_links(jobs) -> str:
    return format_html_join(
        ", ", '<a href="{}">{}</a>', ((reverse("admin:jobs_job_change", args=[job.pk]), job.name) for job in jobs)
    )


class ScheduleRowForm(forms.ModelForm):
    """A row a job's schedule uses passes the cron engine's checks, each message beside its field."""

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.instance.pk is not None and row_jobs(self.instance).exists():
            for field, message in row_errors(self.instance).items():
                self.add_error(field if field in self.fields else None, message)


class JobRowsGuarded:
    """Rows that jobs use: edited under the jobs' own rules, never deleted here."""

    # How a Job reaches a row of this admin, and a row the jobs that use it.
    job_lookup = ""
    row_lookup = ""
    base_change_form = "admin/change_form.html"
    change_form_template = "admin/jobs/beat/job_row_change_form.html"

    def jobs_using(self, obj) -> QuerySet[Job]:
        return Job.objects.filter(**{self.job_lookup: obj}).order_by("name")

    def used_by_job(self, obj) -> bool:
        return obj is not None and self.jobs_using(obj).exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return not self.used_by_job(obj) and super().has_delete_permission(request, obj)

    def named_jobs(self, request, jobs: QuerySet[Job]) -> str:
        """Words for ``jobs`` ("job x", "jobs x, y and 2 other job(s)"), linked; only the jobs the
        user may see are named, the others counted."""
        named = list(jobs.filter(pk__in=access.allowed_jobs(request.user, access.VIEW).values("pk"))[:JOBS_NAMED])
        others = jobs.count() - len(named)
        if not named:
            return f"{others} job(s) you may not see"
        more = f" and {others} other job(s)" if others else ""
        return format_html("job{} {}{}", "s" if len(named) + others > 1 else "", job_links(named), more)

    def job_note(self, request, obj) -> str:
        return format_html(
            "{} holds the schedule of {}: saving it moves their next runs, and needs the right to change "
            "each of them. It is deleted with its job, not here.",
            obj,
            self.named_jobs(request, self.jobs_using(obj)),
        )

    def edit_refusal(self, request, obj) -> str:
        """Why ``request.user`` may not change ``obj`` as posted ("" when allowed): the job's change
        rule, for every job the row schedules."""
        changeable = access.allowed_jobs(request.user, access.CHANGE).values("pk")
        if self.jobs_using(obj).exclude(pk__in=changeable).exists():
            return access.refusal_reason(request.user, access.CHANGE)
        return ""

    def refuse(self, request, obj, *, reason: str = "", words: str = ""):
        """Audit the refusal on each job the row schedules, say why, and go back to the row's page."""
        if reason:
            for job in self.jobs_using(obj):
                audit_record(
                    actor=request.user,
                    action=AuditEntry.Action.UPDATE,
                    instance=job,
                    address=client_address(request),
                    refused=f"{obj._meta.verbose_name} {obj}: {reason}",
                )
        jobs = self.named_jobs(request, self.jobs_using(obj))
        text = format_html("{} not changed: {} ({}).", obj, words or f"not allowed, {reason}", jobs)
        self.message_user(request, text, messages.ERROR)
        opts = self.opts
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))

    def delete_refusal(self, request, object_id):
        """For a row jobs use: the refusal (message, back to its page); else None."""
        obj = self.get_object(request, unquote(object_id))
        if not self.used_by_job(obj):
            return None
        return self.refuse(request, obj, words="a job's schedule is deleted with its job")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "base_change_form": self.base_change_form}
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        if self.used_by_job(obj):
            if request.method == "POST" and (reason := self.edit_refusal(request, obj)):
                return self.refuse(request, obj, reason=reason)
            extra_context["job_note"] = self.job_note(request, obj)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        return self.delete_refusal(request, object_id) or super().delete_view(request, object_id, extra_context)

    def rows_no_job_uses(self, request, queryset: QuerySet) -> QuerySet:
        """``queryset`` without the rows jobs use, after saying which were left out and why;
        selected rows the user may not see are reported as not found."""
        used = set(queryset.filter(**{f"{self.row_lookup}__isnull": False}).values_list("pk", flat=True))
        if used:
            jobs = Job.objects.filter(**{f"{self.job_lookup}__in": used}).order_by("name").distinct()
            words = (
                "{} of the selected {} belong to jobs and were left unchanged: edit them one at a time, "
                "or on the job's page ({})."
            )
            note = format_html(words, len(used), self.opts.verbose_name_plural, self.named_jobs(request, jobs))
            self.message_user(request, note, messages.WARNING)
        selected = set(request.POST.getlist(ACTION_CHECKBOX_NAME))
        missing = 0 if request.POST.get("select_across") == "1" else len(selected) - queryset.count()
        if missing > 0:
            plural = self.opts.verbose_name_plural
            words = f"{missing} of the selected {plural} not found: deleted, or a job's you may not see."
            self.message_user(request, words, messages.ERROR)
        return queryset.exclude(pk__in=used)

    @admin.action(permissions=["delete"], description="Delete selected %(verbose_name_plural)s")
    def delete_selected(self, request, queryset):
        """Django's delete action (confirmation page, then delete) on the rows no job uses."""
        queryset = self.rows_no_job_uses(request, queryset)
        if queryset.exists():
            return django_delete_selected(self, request, queryset)
        return None


def task_choices() -> list[tuple[str, str]]:
    return [("", ""), *((name, name) for name in schedulable_task_names())]


class PeriodicTaskForm(beat_admin.PeriodicTaskForm):
    """django-celery-beat's form, offering and accepting only the tasks this admin may schedule."""

    regtask = forms.ChoiceField(label="Task (registered)", required=False, choices=task_choices)

    def clean(self):
        data = super().clean()
        task = data.get("task")
        if task and task not in schedulable_task_names():
            self.add_error(
                "task",
                f"{task} is not a task this page may schedule: choose a registered task. The job engine's "
                "tasks are sent by the jobs themselves: create or edit a job instead.",
            )
        if (data.get("name") or "").startswith(PERIODIC_TASK_PREFIX):
            self.add_error("name", f"Names starting with {PERIODIC_TASK_PREFIX} are kept for the jobs' own tasks.")
        return data


class JobTaskForm(ScheduleRowForm):
    """A job's task: its schedule (a crontab or an interval row), enabled flag and description."""

    class Meta:
        model = PeriodicTask
        fields = ("enabled", "description", "crontab", "interval", "solar", "clocked")


# What a job's task runs is the job's: a POST that changes one of these is refused.
JOB_TASK_FIXED = ("name", "task", "args", "kwargs")
JOB_TASK_FIELDSETS = (
    (None, {"fields": ("name", "enabled", "description")}),
    ("Schedule (the job's)", {"fields": ("crontab", "interval", "solar", "clocked")}),
)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(JobRowsGuarded, AuditedAdmin, beat_admin.PeriodicTaskAdmin):
    form = PeriodicTaskForm
    job_lookup = "periodic_task"
    row_lookup = "job"
    base_change_form = beat_admin.PeriodicTaskAdmin.change_form_template
    actions = (*beat_admin.PeriodicTaskAdmin.actions, "delete_selected")

    def get_queryset(self, request):
        return visible_tasks(super().get_queryset(request), request.user)

    def get_fieldsets(self, request, obj=None):
        if self.used_by_job(obj):
            return JOB_TASK_FIELDSETS
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        # Read-only: the form's "registered task" choice is no field of the row to show.
        return [(name, {**opts, "fields": [f for f in opts["fields"] if f != "regtask"]}) for name, opts in fieldsets]

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "name") if self.used_by_job(obj) else fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if self.used_by_job(obj):
            kwargs["form"] = JobTaskForm
        return super().get_form(request, obj, change, **kwargs)

    def edit_refusal(self, request, obj) -> str:
        """Beside the change rule: what the task runs stays the job's, and turning it on or off
        is the job's toggle rule."""
        posted = request.POST
        if any(name in posted and posted[name] != str(getattr(obj, name)) for name in JOB_TASK_FIXED):
            return "what a job's task runs is the job's; only its schedule and enabled flag are edited here"
        if reason := super().edit_refusal(request, obj):
            return reason
        if ("enabled" in posted) != obj.enabled and not access.job_allows(request.user, access.TOGGLE, obj.job):
            return access.refusal_reason(request.user, access.TOGGLE)
        return ""

    def has_delete_permission(self, request, obj=None) -> bool:
        # Destructive schedule actions need jobs.manage_schedule on every surface (docs/permissions.md).
        return not self.used_by_job(obj) and access.may_manage_schedule(request.user)

    def delete_view(self, request, object_id, extra_context=None):
        if refused := self.delete_refusal(request, object_id):
            return refused
        if not has_recent_login(request):
            return reauthenticate_redirect(request, request.get_full_path())
        return super().delete_view(request, object_id, extra_context)

    @admin.action(permissions=["delete"], description="Delete selected %(verbose_name_plural)s")
    def delete_selected(self, request, queryset):
        """Behind a recent login, as unscheduling is on the schedule page."""
        if not has_recent_login(request):
            return reauthenticate_redirect(request, request.path)
        return super().delete_selected(request, queryset)

    def _set_enabled(self, request, tasks, enabled: bool) -> int:
        return periodic_tasks_set_enabled(
            tasks=tasks, enabled=enabled, user=request.user, address=client_address(request)
        )

    @admin.action(description="Enable selected tasks", permissions=["change"])
    def enable_tasks(self, request, queryset):
        count = self._set_enabled(request, self.rows_no_job_uses(request, queryset), True)
        self.message_user(request, f"{count} task(s) enabled.")

    @admin.action(description="Disable selected tasks", permissions=["change"])
    def disable_tasks(self, request, queryset):
        count = self._set_enabled(request, self.rows_no_job_uses(request, queryset), False)
        self.message_user(request, f"{count} task(s) disabled.")

    @admin.action(description="Toggle activity of selected tasks", permissions=["change"])
    def toggle_tasks(self, request, queryset):
        tasks = list(self.rows_no_job_uses(request, queryset))
        count = self._set_enabled(request, [t for t in tasks if t.enabled], False)
        count += self._set_enabled(request, [t for t in tasks if not t.enabled], True)
        self.message_user(request, f"{count} task(s) toggled.")

    @admin.action(description="Run selected tasks", permissions=["change"])
    def run_tasks(self, request, queryset):
        """django-celery-beat's run, for the tasks no job owns that name a task this page may send."""
        tasks = self.rows_no_job_uses(request, queryset)
        allowed = schedulable_task_names()
        for task in tasks.exclude(task__in=allowed):
            refusal = f"{task.name} not run: {task.task} is no task this page may send."
            self.message_user(request, refusal, messages.ERROR)
        runnable = tasks.filter(task__in=allowed)
        if runnable.exists():
            super().run_tasks(request, runnable)


class VisibleTasksInline(OneFormatMixin, beat_admin.PeriodicTaskInline):
    """The tasks using a schedule, without those of jobs the user may not see."""

    def get_queryset(self, request):
        return visible_tasks(super().get_queryset(request), request.user)


class CrontabScheduleForm(ScheduleRowForm):
    class Meta:
        model = CrontabSchedule
        fields = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week", "timezone")


class IntervalScheduleForm(ScheduleRowForm):
    class Meta:
        model = IntervalSchedule
        fields = ("every", "period")


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(JobRowsGuarded, AuditedAdmin, beat_admin.CrontabScheduleAdmin):
    form = CrontabScheduleForm
    inlines = [VisibleTasksInline]
    job_lookup = "periodic_task__crontab"
    row_lookup = "periodictask__job"
    actions = ("delete_selected",)


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(JobRowsGuarded, AuditedAdmin, beat_admin.IntervalScheduleAdmin):
    form = IntervalScheduleForm
    inlines = [VisibleTasksInline]
    job_lookup = "periodic_task__interval"
    row_lookup = "periodictask__job"
    actions = ("delete_selected",)
