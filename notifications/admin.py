"""The queue and the webhooks as operations screens: filter, search, see, retry, cancel."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.db.models.functions import Coalesce
from django.utils.html import format_html

from core.admin_columns import OneFormatAdmin, one_line_cell, when
from core.http_guard import DestinationRefused, url_check
from jobs.admin.system_log import SystemLogAdmin  # noqa: F401  (registers the system log until jobs/admin/jobs.py does)
from notifications.channels import admin as channel_admin  # noqa: F401  (the alert channels' pages)
from notifications.email.rendering import message_render
from notifications.models import Notification, WebhookDelivery, WebhookEndpoint
from notifications.services import notifications_cancel, notifications_retry
from notifications.webhooks import webhook_deliveries_retry, webhook_endpoint_ping


@admin.register(Notification)
class NotificationAdmin(OneFormatAdmin):
    # Fits a 1366 px screen beside the filters; the context and the rendered message are on its page.
    list_display = ("recipient", "message", "status", "tries", "sent_or_due", "error_excerpt")
    list_filter = ("status", "kind", "template")
    search_fields = ("recipient", "dedupe_key")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    actions = ["retry", "cancel"]
    exclude = ("context",)
    readonly_fields = [
        f.name for f in Notification._meta.fields if f.name not in ("context", "claim_token", "uuid", "id")
    ] + ["uuid", "context_json", "rendered"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None  # list and actions, but no editing of a queued message

    @admin.display(description="message", ordering="template")
    def message(self, notification: Notification) -> str:
        """The template's name; a raw e-mail's subject (``send_email``)."""
        return notification.template or one_line_cell(notification.subject)

    @admin.display(description="tries", ordering="attempts")
    def tries(self, notification: Notification) -> int:
        return notification.attempts

    @admin.display(description="sent / due", ordering=Coalesce("sent_at", "send_after"))
    def sent_or_due(self, notification: Notification) -> str:
        """When it went out; else when it may go (next attempt); nothing for one that never will."""
        if notification.sent_at:
            return when(notification.sent_at)
        return when(notification.send_after) if notification.status in Notification.WAITING_STATUSES else "-"

    @admin.display(description="last error")
    def error_excerpt(self, notification: Notification) -> str:
        return one_line_cell(notification.last_error)

    @admin.display(description="context")
    def context_json(self, notification: Notification) -> str:
        return format_html("<pre>{}</pre>", json.dumps(notification.context, indent=2, sort_keys=True, default=str))

    @admin.display(description="rendered message")
    def rendered(self, notification: Notification) -> str:
        try:
            subject, text, html = message_render(notification)
        except Exception as exc:  # show why it cannot be rendered instead of a 500
            return format_html("<strong>Cannot render:</strong> {}", f"{type(exc).__name__}: {exc}")
        html_part = format_html(
            '<iframe sandbox="" srcdoc="{}" style="width: 100%; height: 400px; border: 1px solid #ccc;"></iframe>',
            html,
        )
        return format_html(
            "<p><strong>Subject:</strong> {}</p><pre style='white-space: pre-wrap'>{}</pre>{}",
            subject,
            text,
            html_part if html else "",
        )

    @admin.action(description="Retry (send again with a fresh attempt budget)")
    def retry(self, request, queryset):
        count = notifications_retry(notification_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} message(s) queued again.", messages.SUCCESS)

    @admin.action(description="Cancel (do not send)")
    def cancel(self, request, queryset):
        count = notifications_cancel(notification_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} message(s) cancelled.", messages.SUCCESS)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        help_text="http(s) only; loopback, private, link-local and metadata addresses are refused.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("name", "url", "events", "active", "secret", "description")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            url_check(url)  # scheme, metadata names, literal addresses; names are checked when sending
        except DestinationRefused as exc:
            raise forms.ValidationError(str(exc)) from None
        return url

    def clean_events(self) -> list:
        events = self.cleaned_data["events"] or []
        if not isinstance(events, list) or not all(isinstance(e, str) and e for e in events):
            raise forms.ValidationError('A JSON list of event names, e.g. ["payout.created", "billing.*"].')
        return events


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OneFormatAdmin):
    form = WebhookEndpointForm
    list_display = ("name", "url", "active", "events")
    list_filter = ("active",)
    search_fields = ("name", "url")
    actions = ["ping"]

    @admin.action(description="Send a test event (ping)")
    def ping(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_ping(endpoint=endpoint)
        self.message_user(request, f"Ping queued to {queryset.count()} endpoint(s).", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OneFormatAdmin):
    list_display = (
        "id",
        "event",
        "endpoint",
        "status",
        "attempts",
        "response_status",
        "duration_ms",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event", "endpoint")
    list_select_related = ("endpoint",)
    search_fields = ("event", "=uuid")
    date_hierarchy = "created_at"
    actions = ["retry"]
    exclude = ("payload",)
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields if f.name not in ("payload", "id")] + [
        "payload_json"
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None

    @admin.display(description="payload")
    def payload_json(self, delivery: WebhookDelivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(delivery.payload, indent=2, sort_keys=True, default=str))

    @admin.display(description="duration (ms)")
    def duration_ms(self, delivery: WebhookDelivery):
        return delivery.duration_ms

    @admin.action(description="Retry now")
    def retry(self, request, queryset):
        count = webhook_deliveries_retry(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} delivery(ies) queued again.", messages.SUCCESS)
