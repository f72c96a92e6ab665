"""Blackout windows and chains in the admin. A window or a chain changes when jobs run, so a
person attaches one only to jobs they may change (``jobs.permissions.access``, CHANGE); every
change is audited."""

from __future__ import annotations

from django.contrib import admin

from jobs.admin.audited import AuditedAdmin
from jobs.models import BlackoutWindow, JobDependency
from jobs.permissions import access


@admin.register(BlackoutWindow)
class BlackoutWindowAdmin(AuditedAdmin):
    list_display = ("name", "kind", "span", "reason")
    list_filter = ("kind",)
    search_fields = ("name", "reason")
    autocomplete_fields = ("jobs", "groups")
    fields = ("name", "kind", ("starts_on", "starts_at"), ("ends_on", "ends_at"), "reason", "jobs", "groups")

    @admin.display(description="When (each job's timezone)")
    def span(self, window: BlackoutWindow) -> str:
        shape = "%b %d" if window.kind == BlackoutWindow.Kind.YEARLY else "%Y-%m-%d"
        start = f"{window.starts_on:{shape}} {window.starts_at:%H:%M}"
        return f"{start} to {window.ends_on:{shape}} {window.ends_at:%H:%M}"

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "jobs":
            kwargs["queryset"] = access.allowed_jobs(request.user, access.CHANGE)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(JobDependency)
class JobDependencyAdmin(AuditedAdmin):
    list_display = ("job", "upstream")
    list_select_related = ("job", "upstream")
    search_fields = ("job__name", "upstream__name")
    autocomplete_fields = ("job", "upstream")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "job":
            kwargs["queryset"] = access.allowed_jobs(request.user, access.CHANGE)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(job__in=access.allowed_jobs(request.user, access.VIEW))
