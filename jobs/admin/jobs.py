"""The admin as an operations tool: jobs (handler from a list, cron in words, next runs, run now,
pause/resume, latest runs), read-only runs, webhook handlers with a write-only secret, and
an audit entry for every create, change and delete."""

from __future__ import annotations

import json
import re

from django.contrib import admin, messages
from django.contrib.admin.views.main import ALL_VAR, ERROR_FLAG, IS_POPUP_VAR, ORDER_VAR, PAGE_VAR, SEARCH_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.db.models.functions import Left
from django.forms.models import BaseInlineFormSet
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from core.admin_columns import TITLE_LIMIT, OneFormatAdmin, OneFormatTabularInline, one_line_cell, when
from core.admin_paging import EstimatedCountPaginator
from core.formatting import format_datetime, format_duration
from core.ratelimit import client_address
from jobs.admin.audited import AuditedAdmin
from jobs.forms import JobAdminForm, WebhookHandlerAdminForm
from jobs.models import AuditEntry, Job, JobOperatorGroup, JobRun, WebhookHandler
from jobs.permissions import access
from jobs.permissions.guards import action_limit_message, action_limit_reached
from jobs.running.cancels import CancelRefused, cancel_request
from jobs.running.run_options import run_options_words
from jobs.running.run_requests import jobs_run_now
from jobs.scheduling.cron import schedule_problem, upcoming_runs
from jobs.scheduling.pauses import PauseRefused, job_pause, job_resume
from jobs.scheduling.schedules import SCHEDULE_ROWS

# The app list beside every page takes a quarter of a 1366 px screen from the lists; the home page
# and the breadcrumbs lead everywhere it did.
admin.site.enable_nav_sidebar = False


def jobs_enable(*, jobs, enabled: bool, user, address: str = "") -> tuple[int, list[str]]:
    """Resume or pause each of ``jobs`` through the one pause writer (``jobs.scheduling.pauses``:
    the access rule, a conditional UPDATE, its beat entry, an audit entry, refusals included);
    returns (how many changed, refusal messages)."""
    count, refused = 0, []
    for job in jobs:
        try:
            if enabled:
                count += job_resume(job=job, who=user, address=address)
            else:
                count += job_pause(job=job, who=user, reason="", address=address)
        except PauseRefused as refusal:
            refused.append(str(refusal))
    return count, refused


class LatestRunsFormSet(BaseInlineFormSet):
    """This job's ten newest runs, through the (job, -created_at) index, not a page over every run."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ids = list(self.queryset.order_by("-created_at", "-id").values_list("pk", flat=True)[:10])
        self.queryset = self.queryset.filter(pk__in=ids)


class RecentRunsInline(OneFormatTabularInline):
    model = JobRun
    formset = LatestRunsFormSet
    fk_name = "job"
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = "latest runs"
    fields = (
        "id",
        "status",
        "triggered_by",
        "run_options",
        "attempt",
        "scheduled_for",
        "started_at",
        "duration",
        "skip_reason",
    )
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    show_change_link = True

    @admin.display(description="options")
    def run_options(self, run: JobRun) -> str:
        """As of, dry run and the command's options, as every list shows them."""
        return run_options_words(run.options) or "-"


class OperatorGroupsInline(OneFormatTabularInline):
    """Limits the job to these groups' members (none: everyone with the model permission)."""

    model = JobOperatorGroup
    extra = 0
    verbose_name = "operator group"
    verbose_name_plural = "limited to operator groups (empty: everyone with the permission)"


class PausedFilter(admin.SimpleListFilter):
    """Paused jobs (``Job.enabled`` false) or the others, in the words every page uses."""

    title = "paused"
    parameter_name = "paused"

    def lookups(self, request, model_admin):
        return [("yes", "Paused"), ("no", "Not paused")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(enabled=self.value() == "no")
        return queryset


@admin.register(Job)
class JobAdmin(AuditedAdmin):
    form = JobAdminForm
    # Fits a 1366 px screen beside the filters; the handler, next runs and the rest are on the job's page.
    list_display = ("name", "schedule_in_words", "paused", "last_run", "result", "duration", "failures")
    list_filter = (PausedFilter, "last_run_status", "housekeeping")
    search_fields = ("name", "description", "command")
    readonly_fields = (
        "schedule_in_words",
        "next_runs",
        "last_run_at",
        "last_run_status",
        "last_success_at",
        "last_duration",
        "consecutive_failures",
    )
    inlines = [OperatorGroupsInline, RecentRunsInline]
    actions = ["run_now", "enable", "disable"]

    @admin.display(description="paused", boolean=True, ordering="enabled")
    def paused(self, job: Job) -> bool:
        return not job.enabled

    @admin.display(description="schedule")
    def schedule_in_words(self, job: Job) -> str:
        return job.schedule_description if (job.cron_expression or job.interval_seconds) else "-"

    @admin.display(description="last run", ordering="last_run_at")
    def last_run(self, job: Job) -> str:
        return when(job.last_run_at)

    @admin.display(description="result", ordering="last_run_status")
    def result(self, job: Job) -> str:
        if job.last_run_status == JobRun.Status.SUCCEEDED and job.last_run_warnings:
            return "succeeded with warnings"
        return job.last_run_status or "-"

    @admin.display(description="duration", ordering="last_duration")
    def duration(self, job: Job) -> str:
        return format_duration(job.last_duration)

    @admin.display(description="failures", ordering="consecutive_failures")
    def failures(self, job: Job) -> int:
        return job.consecutive_failures

    @admin.display(description="next runs")
    def next_runs(self, job: Job) -> str:
        if not (job.cron_expression or job.interval_seconds):
            return "-"
        times = upcoming_runs(job.cron_expression, job.interval_seconds, job.timezone, timezone.now())
        if not times:
            return schedule_problem(job.cron_expression, job.interval_seconds) or "-"
        zone = timezone.zoneinfo.ZoneInfo(job.timezone)
        return format_html_join(
            "", "<div>{}</div>", ((t.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z"),) for t in times)
        )

    # The schedule column reads the job's task's crontab / interval row: fetched with the page.
    list_select_related = SCHEDULE_ROWS

    def get_fields(self, request, obj=None):
        """The schedule (form fields, not columns) where the old columns stood: after the handler."""
        schedule = JobAdminForm.SCHEDULE_FIELDS
        fields = [name for name in super().get_fields(request, obj) if name not in schedule]
        at = fields.index("webhook_handler") + 1 if "webhook_handler" in fields else len(fields)
        return [*fields[:at], *schedule, *fields[at:]]

    def get_queryset(self, request):
        # A job the user may not see (jobs.view_jobrun, its operator groups) has no row here and
        # answers 404 by its URL.
        jobs = super().get_queryset(request).select_related(*SCHEDULE_ROWS)
        return jobs.filter(pk__in=access.allowed_jobs(request.user, access.VIEW).values("pk"))

    def has_change_permission(self, request, obj=None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or access.job_allows(request.user, access.CHANGE, obj))

    def has_delete_permission(self, request, obj=None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or access.job_allows(request.user, access.CHANGE, obj))

    def get_deleted_objects(self, objs, request):
        """A job with runs is not deleted (its runs are the audit trail; the delete pages say so and
        offer to pause it): each is listed as protected, linked to its runs, without walking them."""
        jobs = list(objs)
        with_runs = Job.objects.filter(pk__in=[job.pk for job in jobs]).filter(
            Exists(JobRun.objects.filter(job=OuterRef("pk")))
        )
        if protected := [_runs_link(job) for job in with_runs.order_by("name")]:
            return [str(job) for job in jobs], {}, set(), protected
        return super().get_deleted_objects(jobs, request)

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm(access.PERMISSIONS[access.RUN])

    def has_toggle_permission(self, request) -> bool:
        return request.user.has_perm(access.PERMISSIONS[access.TOGGLE])

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        # Pausing is a permission of its own: the form's "active" box is no way around it.
        if obj is not None and not self.has_toggle_permission(request):
            fields += ("enabled",)
        return fields

    def _report(self, request, started: list[str], refused: list[str]) -> None:
        for text in started:
            self.message_user(request, text, messages.SUCCESS)
        for text in refused:
            self.message_user(request, text, messages.WARNING)

    @admin.action(description="Run now", permissions=["run"])
    def run_now(self, request, queryset):
        if (retry_after := action_limit_reached(request)) is not None:
            self.message_user(request, action_limit_message(retry_after), messages.ERROR)
            return None
        started, refused = jobs_run_now(jobs=queryset, user=request.user, address=client_address(request))
        self._report(request, started, refused)

    @admin.action(description="Resume", permissions=["toggle"])
    def enable(self, request, queryset):
        if (retry_after := action_limit_reached(request)) is not None:
            self.message_user(request, action_limit_message(retry_after), messages.ERROR)
            return None
        count, refused = jobs_enable(
            jobs=list(queryset), enabled=True, user=request.user, address=client_address(request)
        )
        self._report(request, [f"{count} job(s) resumed."], refused)

    @admin.action(description="Pause", permissions=["toggle"])
    def disable(self, request, queryset):
        if (retry_after := action_limit_reached(request)) is not None:
            self.message_user(request, action_limit_message(retry_after), messages.ERROR)
            return None
        count, refused = jobs_enable(
            jobs=list(queryset), enabled=False, user=request.user, address=client_address(request)
        )
        self._report(request, [f"{count} job(s) paused."], refused)


def _runs_link(job: Job) -> str:
    url = reverse("admin:jobs_jobrun_changelist")
    return format_html('{}: <a href="{}?job__id__exact={}&amp;housekeeping=1">its runs</a>', job.name, url, job.pk)


def _pre(text: str) -> str:
    return format_html('<pre style="white-space:pre-wrap;margin:0">{}</pre>', text) if text else "-"


# Shown formatted (JSON, <pre>) instead of as raw form fields.
RUN_TEXT_FIELDS = ("summary", "error", "output", "warnings")
# Parameters of the run list that choose how it is shown, not which runs.
LIST_DISPLAY_PARAMS = {PAGE_VAR, ORDER_VAR, ALL_VAR, ERROR_FLAG, IS_POPUP_VAR, "_changelist_filters"}


# Moments and durations of a run's page, shown in the one format of every page (core.formatting).
RUN_MOMENT_FIELDS = (
    "created_at",
    "scheduled_for",
    "not_before",
    "dispatched_at",
    "started_at",
    "heartbeat_at",
    "finished_at",
    "acknowledged_at",
    "cancel_requested_at",
)
# Left out of the list's query: a run's output and texts can be long, and a page holds 100 runs.
# Not options: a few keys the list shows (as of, dry run), read with the row.
RUN_LIST_DEFERRED = ("summary", "error", "output")
# A search term of this shape is a Celery task id.
TASK_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Jobs a name-prefix search matches at most; a longer prefix narrows it.
SEARCH_JOBS_LIMIT = 500


def _moment_column(name: str):
    @admin.display(description=JobRun._meta.get_field(name).verbose_name)
    def column(run: JobRun) -> str:
        return format_datetime(getattr(run, name))

    column.__name__ = f"{name}_text"
    return column


def runs_search(queryset, term: str):
    """What the run list's search box finds, each through an index: a run id (digits), a Celery
    task id (exact), or runs of the jobs whose name starts with ``term`` (at most
    SEARCH_JOBS_LIMIT jobs, looked up in the job table first)."""
    term = term.strip()
    if not term:
        return queryset
    if term.isdigit():
        return queryset.filter(pk=int(term))
    if TASK_ID.match(term):
        return queryset.filter(celery_task_id=term)
    job_ids = list(
        Job.objects.filter(name__startswith=term).order_by("name").values_list("pk", flat=True)[:SEARCH_JOBS_LIMIT]
    )
    return queryset.filter(job_id__in=job_ids)


class HousekeepingFilter(admin.SimpleListFilter):
    """The upkeep jobs' runs (``Job.housekeeping``: a queue drain every 30 s) are left out of the
    list unless asked for (``?housekeeping=1``): a ``NOT IN`` of a handful of job ids
    (jobs_job_housekeeping) beside the list's newest-first walk."""

    title = "housekeeping jobs"
    parameter_name = "housekeeping"

    def lookups(self, request, model_admin):
        return [("1", "Included")]

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Left out",
        }
        yield from list(super().choices(changelist))[1:]

    def queryset(self, request, queryset):
        if self.value() == "1":
            return queryset
        return queryset.exclude(job__in=Job.objects.housekeeping())


@admin.register(JobRun)
class JobRunAdmin(OneFormatAdmin):
    # Fits a 1366 px screen beside the filters; the slot, output and the rest are on the run's page.
    list_display = ("id", "job_name", "status_column", "trigger", "attempt", "started", "duration_column", "error_line")
    # Each served by an index (jobs_jobrun_failures, jobs_jobrun_active, or the newest-first
    # jobs_jobrun_created for the common values). A job's runs: ?job__id__exact=<id> (the job's
    # page links it) or a search for its name; a sidebar listing every job would not fit 100,000.
    list_filter = ("status", "triggered_by", HousekeepingFilter)
    list_select_related = ("job",)
    # Newest first through jobs_jobrun_created; no date_hierarchy (its per-date queries read
    # every run), no full COUNT(*) (EstimatedCountPaginator, and no second count below).
    ordering = ("-created_at", "-id")
    search_fields = ("job__name",)  # shows the search box; runs_search decides what it matches
    search_help_text = "A run id, a Celery task id, or the start of a job's name."
    show_full_result_count = False
    actions = ["cancel_runs"]
    exclude = (*RUN_TEXT_FIELDS, *RUN_MOMENT_FIELDS, "duration")
    readonly_fields = (
        [
            f.name
            for f in JobRun._meta.fields
            if f.name not in RUN_TEXT_FIELDS and f.name not in RUN_MOMENT_FIELDS and f.name != "duration"
        ]
        + [_moment_column(name) for name in RUN_MOMENT_FIELDS]
        + [
            "lineage",
            "duration_column",
            "summary_json",
            "warnings_text",
            "error_text",
            "output_text",
        ]
    )

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        filtered = any(
            key not in LIST_DISPLAY_PARAMS and (value or key != SEARCH_VAR) for key, value in request.GET.items()
        )
        try:
            page = max(1, int(request.GET.get(PAGE_VAR, 1)))
        except ValueError:
            page = 1
        return EstimatedCountPaginator(
            queryset,
            per_page,
            orphans=orphans,
            allow_empty_first_page=allow_empty_first_page,
            unfiltered=not filtered and not self._limited(request),
            page=page,
        )

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        # One job's runs (jobs_jobrun_job_created), without a filter listing every job.
        return lookup in ("job__id__exact", "job") or super().lookup_allowed(lookup, value, request)

    def get_search_results(self, request, queryset, search_term):
        return runs_search(queryset, search_term), False

    @admin.display(description="status", ordering="status")
    def status_column(self, run: JobRun) -> str:
        return f"{run.status_text} (dry run)" if (run.options or {}).get("dry_run") else run.status_text

    @admin.display(description="job", ordering="job__name")
    def job_name(self, run: JobRun) -> str:
        return run.job.name

    @admin.display(description="trigger", ordering="triggered_by")
    def trigger(self, run: JobRun) -> str:
        """How it was asked for, with the run's own options (as of, dry run, the command's)."""
        options = run_options_words(run.options)
        return f"{run.get_triggered_by_display()} · {options}" if options else run.get_triggered_by_display()

    @admin.display(description="started", ordering="started_at")
    def started(self, run: JobRun) -> str:
        return when(run.started_at)

    @admin.display(description="duration", ordering="duration")
    def duration_column(self, run: JobRun) -> str:
        return format_duration(run.duration)

    @admin.display(description="error")
    def error_line(self, run: JobRun) -> str:
        if run.status == JobRun.Status.CANCELLED and run.cancel_text:
            return one_line_cell(run.cancel_text)
        error = run.error_start if hasattr(run, "error_start") else run.error
        if not error and run.warnings:
            return one_line_cell(f"warning: {run.warnings[0]}")
        return one_line_cell(error)

    @admin.display(description="retries")
    def lineage(self, run: JobRun) -> str:
        """The failed run this one retries and the run that retried it, as links to their pages."""
        links = []
        if run.retry_of_id:
            links.append(("retry of", run.retry_of_id))
        if retried_as := run.retried_as():
            links.append(("retried as", retried_as))
        if not links:
            return "-"
        return format_html_join(
            "; ",
            '{} <a href="{}">#{}</a>',
            ((text, reverse("admin:jobs_jobrun_change", args=[pk]), pk) for text, pk in links),
        )

    @admin.display(description="summary")
    def summary_json(self, run: JobRun) -> str:
        return _pre(json.dumps(run.summary, indent=2, sort_keys=True, default=str))

    @admin.display(description="warnings")
    def warnings_text(self, run: JobRun) -> str:
        return _pre("\n".join(run.warnings or []))

    @admin.display(description="error")
    def error_text(self, run: JobRun) -> str:
        return _pre(run.error)

    @admin.display(description="output")
    def output_text(self, run: JobRun) -> str:
        return _pre(run.output)

    def _limited(self, request) -> bool:
        """Whether this user sees only some jobs' runs (jobs.permissions.access)."""
        return not request.user.is_superuser

    def get_queryset(self, request):
        runs = super().get_queryset(request)
        if self._limited(request):
            runs = runs.filter(job__in=access.allowed_jobs(request.user, access.VIEW))
        match = request.resolver_match
        if match is not None and match.url_name == "jobs_jobrun_changelist":
            # The list shows the first line of the error: its head, not a whole traceback.
            runs = runs.defer(*RUN_LIST_DEFERRED).annotate(error_start=Left("error", TITLE_LIMIT + 1))
        return runs

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # runs are the audit trail; purge-logs removes old ones

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm(access.PERMISSIONS[access.CANCEL])

    @admin.action(description="Cancel selected runs (queued, waiting or running)", permissions=["cancel"])
    def cancel_runs(self, request, queryset):
        if (retry_after := action_limit_reached(request)) is not None:
            self.message_user(request, action_limit_message(retry_after), messages.ERROR)
            return None
        for run in queryset.select_related("job")[:100]:
            self._cancel(request, run, "cancelled from the admin's run list")

    def _cancel(self, request, run: JobRun, reason: str) -> None:
        try:
            result = cancel_request(run=run, who=request.user, reason=reason, address=client_address(request))
        except CancelRefused as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return
        level = messages.SUCCESS if result.outcome in ("cancelled", "requested") else messages.WARNING
        self.message_user(request, result.message, level)

    def get_urls(self):
        cancel = self.admin_site.admin_view(require_POST(self.cancel_view))
        return [path("<int:run_id>/cancel/", cancel, name="jobs_jobrun_cancel"), *super().get_urls()]

    def cancel_view(self, request, run_id: int):
        """The run page's "Cancel" button, with the reason typed beside it."""
        run = get_object_or_404(self.get_queryset(request).select_related("job"), pk=run_id)
        if not self.has_cancel_permission(request):
            raise PermissionDenied(f"needs the permission {access.PERMISSIONS[access.CANCEL]}")
        if (retry_after := action_limit_reached(request)) is not None:
            self.message_user(request, action_limit_message(retry_after), messages.ERROR)
        else:
            self._cancel(request, run, request.POST.get("reason", ""))
        return redirect("admin:jobs_jobrun_change", run.pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        extra = {"can_cancel": run is not None and run.cancellable and self.has_cancel_permission(request)}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})


@admin.register(WebhookHandler)
class WebhookHandlerAdmin(AuditedAdmin):
    form = WebhookHandlerAdminForm
    list_display = ("name", "url", "method", "auth", "secret_status", "timeout_seconds")
    list_filter = ("auth", "method")
    search_fields = ("name", "url")
    readonly_fields = ("secret_status",)
    fieldsets = (
        (None, {"fields": ("name", "url", "method", "timeout_seconds", "extra_headers")}),
        (
            "Authentication",
            {"fields": ("auth", "auth_username", "auth_header_name", "secret_status", "new_secret", "clear_secret")},
        ),
    )

    @admin.display(description="secret")
    def secret_status(self, handler: WebhookHandler) -> str:
        return "set (write-only)" if handler.secret else "not set"


@admin.register(AuditEntry)
class AuditEntryAdmin(OneFormatAdmin):
    list_display = ("at", "actor_label", "action", "object_type", "object_repr", "address", "refused_column")
    list_filter = ("action", "object_type", ("refused", admin.EmptyFieldListFilter))
    search_fields = ("object_repr", "actor_label", "address")
    list_select_related = ("api_key",)

    @admin.display(description="refused")
    def refused_column(self, entry: AuditEntry) -> str:
        return entry.refused or "-"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
