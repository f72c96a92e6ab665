"""Alert channels in the admin: configure (secrets write-only), route, send a test, watch deliveries."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.html import format_html

from core.admin_columns import OneFormatAdmin, OneFormatTabularInline, one_line_cell
from core.crypto import secret_encrypt
from core.http_guard import DestinationRefused, url_check
from notifications.channels.delivery import alert_channels_test
from notifications.channels.sending import alert_deliveries_retry
from notifications.models.channels import PAGERDUTY_EVENTS_URL, AlertChannel, AlertDelivery, AlertRoute, AlertThreshold

Kind = AlertChannel.Kind


def _guard_check(url: str) -> None:
    """The outbound guard's checks that need no DNS (scheme, metadata names, literal addresses);
    names are checked again when sending. The message never repeats the URL: a Slack URL is a secret."""
    try:
        url_check(url)
    except DestinationRefused as exc:
        reason = str(exc).rsplit(": ", 1)[-1]
        raise ValidationError(f"The outbound guard refuses this URL: {reason}") from None


class AlertChannelForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500,
        required=False,
        assume_scheme="https",
        help_text=f"PagerDuty: the events API URL (empty: {PAGERDUTY_EVENTS_URL}).",
    )
    new_secret = forms.CharField(
        required=False,
        strip=True,
        label="Secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Slack: the incoming-webhook URL. PagerDuty: the integration's routing key. "
        "Write-only: never shown again; leave empty to keep the stored one.",
    )

    class Meta:
        model = AlertChannel
        fields = ("name", "kind", "active", "recipients", "url", "endpoint", "description")

    def clean_recipients(self) -> str:
        addresses = [a.strip() for a in self.cleaned_data["recipients"].split(",") if a.strip()]
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError(f"Not an e-mail address: {address!r}") from None
        return ", ".join(addresses)

    def clean(self) -> dict:
        data = super().clean()
        kind, secret = data.get("kind"), data.get("new_secret") or ""
        has_secret = bool(secret) or bool(self.instance.secret and self.instance.kind == kind)
        if kind == Kind.EMAIL and not data.get("recipients"):
            self.add_error("recipients", "An e-mail list needs at least one address.")
        elif kind == Kind.WEBHOOK and not data.get("endpoint"):
            self.add_error("endpoint", "A signed webhook sends to an outgoing webhook endpoint: choose one.")
        elif kind in AlertChannel.DELIVERY_KINDS and not has_secret:
            self.add_error("new_secret", "This kind of channel needs its secret.")
        if kind == Kind.SLACK and secret:
            try:
                _guard_check(secret)
            except ValidationError as exc:
                self.add_error("new_secret", exc)
        if kind == Kind.PAGERDUTY:
            data["url"] = data.get("url") or PAGERDUTY_EVENTS_URL
            try:
                _guard_check(data["url"])
            except ValidationError as exc:
                self.add_error("url", exc)
        return data

    def save(self, commit: bool = True) -> AlertChannel:
        channel = super().save(commit=False)
        if secret := self.cleaned_data.get("new_secret"):
            channel.secret = secret_encrypt(secret)
        elif channel.kind not in AlertChannel.DELIVERY_KINDS:
            channel.secret = ""  # a secret of another kind would only be one more thing to leak
        if commit:
            channel.save()
        return channel


class AlertRouteInline(OneFormatTabularInline):
    model = AlertRoute
    extra = 1
    raw_id_fields = ("job",)  # a select of 100,000 jobs would not load
    fields = ("job", "group", "app")


@admin.register(AlertChannel)
class AlertChannelAdmin(OneFormatAdmin):
    form = AlertChannelForm
    list_display = ("name", "kind", "active", "destination", "secret_state")
    list_filter = ("kind", "active")
    search_fields = ("name",)
    inlines = [AlertRouteInline]
    actions = ["send_test"]

    @admin.display(description="destination")
    def destination(self, channel: AlertChannel) -> str:
        """Where it sends, without the secret part: Slack's URL is the secret and is not shown."""
        if channel.kind == Kind.EMAIL:
            return one_line_cell(channel.recipients)
        if channel.kind == Kind.WEBHOOK:
            return str(channel.endpoint)
        if channel.kind == Kind.PAGERDUTY:
            return channel.url
        return "incoming webhook (URL hidden)"

    @admin.display(description="secret")
    def secret_state(self, channel: AlertChannel) -> str:
        return "set" if channel.secret else "-"

    @admin.action(description="Send a test alert")
    def send_test(self, request, queryset):
        count = alert_channels_test(channels=list(queryset.filter(active=True)))
        self.message_user(request, f"Test alert queued to {count} active channel(s).", messages.SUCCESS)


@admin.register(AlertRoute)
class AlertRouteAdmin(OneFormatAdmin):
    list_display = ("__str__", "channel", "job", "group", "app")
    list_filter = ("channel", "app")
    list_select_related = ("channel", "job", "group")
    raw_id_fields = ("job",)
    search_fields = ("job__name", "group__name", "app", "channel__name")


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(OneFormatAdmin):
    list_display = ("id", "summary", "channel", "status", "attempts", "response_status", "error_excerpt")
    list_filter = ("status", "alert", "channel")
    list_select_related = ("channel",)
    search_fields = ("job_name",)
    raw_id_fields = ("digest_into",)
    show_full_result_count = False
    actions = ["retry"]
    exclude = ("payload",)
    readonly_fields = [f.name for f in AlertDelivery._meta.fields if f.name not in ("payload", "id")] + ["payload_json"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None

    @admin.display(description="last error")
    def error_excerpt(self, delivery: AlertDelivery) -> str:
        return one_line_cell(delivery.last_error)

    @admin.display(description="payload (as sent, without the routing key)")
    def payload_json(self, delivery: AlertDelivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(delivery.payload, indent=2, sort_keys=True, default=str))

    @admin.action(description="Retry now")
    def retry(self, request, queryset):
        count = alert_deliveries_retry(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} delivery(ies) queued again.", messages.SUCCESS)


@admin.register(AlertThreshold)
class AlertThresholdAdmin(OneFormatAdmin):
    list_display = ("job", "failures_before_alert", "failures_in_window", "window_seconds")
    list_select_related = ("job",)
    raw_id_fields = ("job",)
    search_fields = ("job__name",)
