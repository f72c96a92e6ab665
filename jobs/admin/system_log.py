"""Admin for the system log (read-only). Registered on import; jobs/admin/jobs.py or another app's
admin module imports it."""

from __future__ import annotations

from django.contrib import admin

from core.admin_columns import OneFormatAdmin
from jobs.models import SystemLog


@admin.register(SystemLog)
class SystemLogAdmin(OneFormatAdmin):
    list_display = ("at", "level", "event", "job", "message")
    list_filter = ("level", "event")
    list_select_related = ("job",)
    search_fields = ("message", "event")
    date_hierarchy = "at"
    readonly_fields = ("at", "level", "event", "message", "job", "data")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
