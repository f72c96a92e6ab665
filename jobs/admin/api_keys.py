"""The admin of named API keys, audited (never with the key): the key is made on save, shown
once on the page that answers the creation (never in a message, which would be stored in the
session or a cookie), and stored only as its digest."""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from core.admin_columns import OneFormatAdmin
from core.ratelimit import client_address
from jobs.models import ApiKey, AuditEntry
from jobs.permissions.api_keys import api_key_revoke, key_digest, new_key
from jobs.permissions.audit import audit_record


def curl_line(token: str, job: str = "generate-charges", base: str = "http://127.0.0.1:8000") -> str:
    return (
        f'curl -X POST -H "Authorization: Bearer {token}" -H "Content-Type: application/json" '
        f'-d \'{{"job": "{job}"}}\' {base}/api/jobs/run'
    )


@admin.register(ApiKey)
class ApiKeyAdmin(OneFormatAdmin):
    list_display = ("name", "state", "created_by", "expires_at", "last_used_at", "last_used_from", "created_at")
    list_select_related = ("created_by",)  # the state column asks whether the owner is active
    search_fields = ("name",)
    filter_horizontal = ("jobs", "groups")
    readonly_fields = ("created_at", "created_by", "ownerless", "revoked_at", "last_used_at", "last_used_from")
    actions = ["revoke"]

    @admin.display(description="state")
    def state(self, key: ApiKey) -> str:
        return key.refusal() or "valid"

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def save_model(self, request, obj, form, change):
        if not change:
            token = new_key()
            obj.digest = key_digest(token)
            obj.created_by = request.user
            # Held on this instance only, for the page that answers this request.
            obj.shown_once = token
        super().save_model(request, obj, form, change)
        fields = [name for name in form.changed_data if name not in ("jobs", "groups")]
        audit_record(
            actor=request.user,
            action=AuditEntry.Action.UPDATE if change else AuditEntry.Action.CREATE,
            instance=obj,
            fields=fields,
            address=client_address(request),
        )

    def response_add(self, request, obj, post_url_continue=None):
        first_job = obj.jobs.order_by("name").first()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "key": obj,
            "token": obj.shown_once,
            "curl": curl_line(obj.shown_once, first_job.name if first_job else "generate-charges"),
            "title": f"API key {obj.name} created",
        }
        response = TemplateResponse(request, "admin/jobs/apikey/created.html", context)
        add_never_cache_headers(response)
        return response

    @admin.action(description="Revoke (refused from now on)", permissions=["change"])
    def revoke(self, request, queryset):
        now = timezone.now()
        for key in queryset:
            if api_key_revoke(key=key, now=now):
                audit_record(
                    actor=request.user, action=AuditEntry.Action.REVOKE, instance=key, address=client_address(request)
                )
                self.message_user(request, f"{key.name} revoked.", messages.SUCCESS)
