"""The admin base class that audits every create, change and delete (the jobs and periodic-task admins)."""

from __future__ import annotations

from core.admin_columns import OneFormatAdmin
from core.ratelimit import client_address
from jobs.permissions.audit import audit_record, snapshot


class AuditedAdmin(OneFormatAdmin):
    """Every create, change and delete made here writes an AuditEntry."""

    def audited_fields(self, form) -> list[str]:
        return getattr(form, "audited_fields", form.changed_data)

    def save_model(self, request, obj, form, change):
        fields = self.audited_fields(form)
        before = snapshot(type(obj).objects.get(pk=obj.pk), fields) if change else {}
        super().save_model(request, obj, form, change)
        action = "update" if change else "create"
        audit_record(
            actor=request.user,
            action=action,
            instance=obj,
            before=before,
            fields=fields,
            address=client_address(request),
        )

    def delete_model(self, request, obj):
        audit_record(actor=request.user, action="delete", instance=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit_record(actor=request.user, action="delete", instance=obj)
        # One delete() per row so each Job's PeriodicTask goes with it (post_delete signal).
        for obj in queryset:
            obj.delete()
