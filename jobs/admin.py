from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .audit import audit_record, snapshot
from .models import AuditEntry, Job, JobRun, WebhookHandler
from .runner import JobDisabled, run_trigger
from .schedules import upcoming_runs
from .sync import jobs_set_enabled


def jobs_run_now(*, jobs, user) -> tuple[list[str], list[str]]:
    """The admin action's logic, testable without a request: (started, refused) messages."""
    started, refused = [], []
    for job in jobs:
        try:
            result = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, user=user)
        except JobDisabled as exc:
            refused.append(str(exc))
            continue
        if result.queued:
            started.append(f"{job.name}: run #{result.run.pk} queued")
        else:
            refused.append(f"{job.name}: not started, {result.run.skip_reason}")
    return started, refused


class AuditedAdmin(admin.ModelAdmin):
    """Every create, change and delete made here writes an AuditEntry."""

    def save_model(self, request, obj, form, change):
        before = snapshot(type(obj).objects.get(pk=obj.pk), form.changed_data) if change else {}
        super().save_model(request, obj, form, change)
        action = "update" if change else "create"
        audit_record(actor=request.user, action=action, instance=obj, before=before, fields=form.changed_data)

    def delete_model(self, request, obj):
        audit_record(actor=request.user, action="delete", instance=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit_record(actor=request.user, action="delete", instance=obj)
        # One delete() per row so each Job's PeriodicTask goes with it (post_delete signal).
        for obj in queryset:
            obj.delete()


class RecentRunsInline(admin.TabularInline):
    model = JobRun
    fk_name = "job"
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("id", "status", "triggered_by", "attempt", "scheduled_for", "started_at", "duration", "skip_reason")
    readonly_fields = fields
    ordering = ("-created_at",)
    show_change_link = True

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        ids = list(queryset.order_by("-created_at").values_list("pk", flat=True)[:10])
        return queryset.filter(pk__in=ids)


@admin.register(Job)
class JobAdmin(AuditedAdmin):
    list_display = (
        "name",
        "handler_label",
        "schedule_in_words",
        "enabled",
        "last_run_at",
        "last_run_status",
        "consecutive_failures",
    )
    list_filter = ("enabled", "last_run_status")
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
    inlines = [RecentRunsInline]
    actions = ["run_now", "enable", "disable"]

    @admin.display(description="schedule")
    def schedule_in_words(self, job: Job) -> str:
        return job.schedule_description if (job.cron_expression or job.interval_seconds) else "-"

    @admin.display(description="next runs")
    def next_runs(self, job: Job) -> str:
        if not (job.cron_expression or job.interval_seconds):
            return "-"
        times = upcoming_runs(job.cron_expression, job.interval_seconds, job.timezone, timezone.now())
        zone = timezone.zoneinfo.ZoneInfo(job.timezone)
        return format_html_join(
            "", "<div>{}</div>", ((t.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z"),) for t in times)
        )

    @admin.action(description="Run now")
    def run_now(self, request, queryset):
        started, refused = jobs_run_now(jobs=queryset, user=request.user)
        for text in started:
            self.message_user(request, text, messages.SUCCESS)
        for text in refused:
            self.message_user(request, text, messages.WARNING)

    @admin.action(description="Enable")
    def enable(self, request, queryset):
        count = jobs_set_enabled(job_ids=list(queryset.values_list("pk", flat=True)), enabled=True)
        self.message_user(request, f"{count} job(s) enabled.")

    @admin.action(description="Disable")
    def disable(self, request, queryset):
        count = jobs_set_enabled(job_ids=list(queryset.values_list("pk", flat=True)), enabled=False)
        self.message_user(request, f"{count} job(s) disabled.")


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ("id", "job", "status", "triggered_by", "attempt", "scheduled_for", "started_at", "duration")
    list_filter = ("status", "triggered_by", "job")
    list_select_related = ("job",)
    date_hierarchy = "created_at"
    search_fields = ("job__name", "celery_task_id")
    exclude = ("summary",)
    readonly_fields = [f.name for f in JobRun._meta.fields if f.name != "summary"] + ["summary_json"]

    @admin.display(description="summary")
    def summary_json(self, run: JobRun) -> str:
        return format_html("<pre>{}</pre>", json.dumps(run.summary, indent=2, sort_keys=True, default=str))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookHandler)
class WebhookHandlerAdmin(AuditedAdmin):
    list_display = ("name", "url", "method", "auth", "timeout_seconds")
    search_fields = ("name", "url")


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "actor_label", "action", "object_type", "object_repr")
    list_filter = ("action", "object_type")
    search_fields = ("object_repr", "actor_label")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
