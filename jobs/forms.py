"""Forms of the admin and the dashboard: a job's handler from the allow-list, cron checked by field,
webhook secrets write-only, re-authentication before destructive actions."""

from __future__ import annotations

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured

from core.crypto import secret_encrypt, secrets_fernet
from core.http_guard import DestinationRefused, resolve_checked, url_check
from core.redaction import MASK
from jobs.catalog.allowlist import command_choices
from jobs.catalog.portable import JOB_FIELDS, WINDOW_FIELDS
from jobs.catalog.validation import handler_errors, overlap_errors
from jobs.models import BlackoutWindow, Job, WebhookHandler
from jobs.scheduling.cron import MAX_INTERVAL_SECONDS, timezone_choices


class JobAdminForm(forms.ModelForm):
    """A job's fields and its schedule. The schedule is not a column of the job: the three fields
    below are staged on the job, whose save() hands them to job_schedule_set (its task's rows)."""

    SCHEDULE_FIELDS = ("cron_expression", "timezone", "interval_seconds")

    cron_expression = forms.CharField(
        required=False,
        max_length=100,
        help_text="Five fields: minute hour day-of-month month day-of-week. Leave empty for an interval. "
        "Day-of-week 7 (Sunday) is stored as 0.",
    )
    interval_seconds = forms.IntegerField(
        required=False,
        min_value=1,
        help_text=f"Run every N seconds (1 to {MAX_INTERVAL_SECONDS:,}, a year) instead of on a cron schedule.",
    )
    command = forms.ChoiceField(
        required=False,
        help_text="The management command this job runs, from the allow-list (docs/permissions.md). "
        "Leave empty to call a webhook handler instead.",
    )
    timezone = forms.ChoiceField(choices=timezone_choices, initial="UTC", help_text="The cron is read in this zone.")

    class Meta:
        model = Job
        fields = "__all__"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["command"].choices = command_choices(self.instance.command if self.instance else "")
        for name in self.SCHEDULE_FIELDS:
            self.initial.setdefault(name, getattr(self.instance, name))
        # A post that leaves it out (an older client) keeps no jitter.
        if "jitter_seconds" in self.fields:
            self.fields["jitter_seconds"].required = False

    def clean(self) -> dict:
        data = super().clean()
        # Staged before the model's clean(), which checks the schedule with the engine.
        failed = any(name in self.errors for name in self.SCHEDULE_FIELDS)
        edited = any(name in self.changed_data for name in self.SCHEDULE_FIELDS) or self.instance.pk is None
        if edited and not failed:
            self.instance.cron_expression = data.get("cron_expression") or ""
            self.instance.timezone = data.get("timezone") or "UTC"
            self.instance.interval_seconds = data.get("interval_seconds")
        found = handler_errors(
            command=data.get("command", ""), config=data.get("config"), queue=data.get("queue") or ""
        )
        found.update(
            overlap_errors(overlap=data.get("overlap") or Job.Overlap.SKIP, max_concurrent=data.get("max_concurrent"))
        )
        for field, message in found.items():
            if field not in self.errors:
                self.add_error(field, message)
        return data

    def clean_jitter_seconds(self) -> int:
        value = self.cleaned_data.get("jitter_seconds")
        return 0 if value is None else value

    def clean_cron_expression(self) -> str:
        # Checked with the rest of the schedule by the job's own clean() (schedule_errors), so a
        # bad cron gets the engine's one message, on this field, wherever a job is written.
        return " ".join(self.cleaned_data.get("cron_expression", "").split())

    def clean_config(self):
        value = self.cleaned_data.get("config")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("Config must be a JSON object of the command's options, e.g. {}.")
        return value


class JobDefinitionForm(JobAdminForm):
    """The admin's job form over a job's definition (``jobs.catalog.portable.JOB_FIELDS``): the API
    and ``import_jobs`` name the webhook handler by its name; statistics are not theirs to set."""

    webhook_handler = forms.ModelChoiceField(
        queryset=WebhookHandler.objects.all(),
        to_field_name="name",
        required=False,
        error_messages={"invalid_choice": "No webhook handler has that name."},
    )

    class Meta:
        model = Job
        fields = list(JOB_FIELDS)  # the schedule's three are JobAdminForm's own fields


def names_field(queryset, what: str) -> forms.ModelMultipleChoiceField:
    """Rows of ``queryset`` chosen by their names (a list), none required."""
    return forms.ModelMultipleChoiceField(
        queryset=queryset,
        to_field_name="name",
        required=False,
        error_messages={"invalid_choice": f"No {what} is named %(value)s."},
    )


class BlackoutWindowDefinitionForm(forms.ModelForm):
    """The admin's blackout window form over a window's definition in a file (``import_jobs``):
    its jobs and groups by name, every job (a shell may change every job)."""

    jobs = names_field(Job.objects.all(), "job")
    groups = names_field(Group.objects.all(), "group")

    class Meta:
        model = BlackoutWindow
        fields = list(WINDOW_FIELDS)


def handler_url_error(url: str) -> str | None:
    """The outbound-HTTP guard's verdict at save time (send time checks again after DNS)."""
    try:
        scheme, host, port = url_check(url)
        resolve_checked(host, port)
    except DestinationRefused as exc:
        return str(exc)
    except OSError:
        return None  # not resolvable from here right now; the send-time check decides
    return None


class WebhookHandlerAdminForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", help_text="http or https; no private addresses.")
    new_secret = forms.CharField(
        label="Set / replace secret",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: the stored secret is never shown. Leave empty to keep the current one.",
    )
    clear_secret = forms.BooleanField(required=False, help_text="Remove the stored secret.")
    extra_headers = forms.JSONField(
        required=False,
        help_text=f'A JSON object, e.g. {{"X-Env": "prod"}}. Values are write-only: one shown as "{MASK}" '
        "keeps the stored value; type a new value to replace it; remove the header to delete it.",
    )

    class Meta:
        model = WebhookHandler
        fields = [
            "name",
            "url",
            "method",
            "auth",
            "auth_username",
            "auth_header_name",
            "extra_headers",
            "timeout_seconds",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Names only: the stored values (tokens) are never sent to the browser.
        self.stored_headers = dict(self.instance.extra_headers or {})
        self.initial["extra_headers"] = {name: MASK for name in self.stored_headers}

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
            raise forms.ValidationError("Put credentials in the secret, not in the URL.")
        if error := handler_url_error(url):
            raise forms.ValidationError(error)
        return url

    def clean_extra_headers(self) -> dict:
        headers = self.cleaned_data.get("extra_headers") or {}
        if not isinstance(headers, dict):
            raise forms.ValidationError('Extra headers must be a JSON object, e.g. {"X-Env": "prod"}.')
        for name, value in headers.items():
            if not isinstance(value, str) or any(c in f"{name}{value}" for c in "\r\n"):
                raise forms.ValidationError(f"Header {name!r} must be one line of text.")
            if value == MASK and name not in self.stored_headers:
                raise forms.ValidationError(f"Header {name!r} has no stored value to keep: type its value.")
        if any(value != MASK for value in headers.values()):
            try:
                secrets_fernet()
            except ImproperlyConfigured as exc:
                raise forms.ValidationError(str(exc)) from None
        return headers

    def clean(self) -> dict:
        data = super().clean()
        auth = data.get("auth")
        if data.get("new_secret"):
            try:
                secrets_fernet()
            except ImproperlyConfigured as exc:
                self.add_error("new_secret", str(exc))
        has_secret = bool(data.get("new_secret")) or (bool(self.instance.secret) and not data.get("clear_secret"))
        if auth and auth != WebhookHandler.Auth.NONE and not has_secret:
            self.add_error("new_secret", "This authentication needs a secret.")
        if auth == WebhookHandler.Auth.BASIC and not data.get("auth_username"):
            self.add_error("auth_username", "HTTP basic authentication needs a username.")
        if auth in (WebhookHandler.Auth.API_KEY, WebhookHandler.Auth.CUSTOM_HEADER) and not data.get(
            "auth_header_name"
        ):
            self.add_error("auth_header_name", "Name the header that carries the secret, e.g. X-API-Key.")
        return data

    def save(self, commit: bool = True) -> WebhookHandler:
        handler = super().save(commit=False)
        if self.cleaned_data.get("new_secret"):
            handler.secret = secret_encrypt(self.cleaned_data["new_secret"])
        elif self.cleaned_data.get("clear_secret"):
            handler.secret = ""
        typed = self.cleaned_data.get("extra_headers") or {}
        handler.extra_headers = {
            name: self.stored_headers[name] if value == MASK else secret_encrypt(value) for name, value in typed.items()
        }
        if commit:
            handler.save()
        return handler

    @property
    def audited_fields(self) -> list[str]:
        """changed_data with the write-only inputs named as the model field they change."""
        names = [n for n in self.changed_data if n not in ("new_secret", "clear_secret")]
        if self.cleaned_data.get("new_secret") or self.cleaned_data.get("clear_secret"):
            names.append("secret")
        return names


class ReauthenticateForm(forms.Form):
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True})
    )

    def __init__(self, *args, request, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_password(self) -> str:
        # Through the auth backends (not check_password), so a failed try is signalled like a login.
        user = self.request.user
        password = self.cleaned_data["password"]
        again = authenticate(self.request, username=user.get_username(), password=password)
        if again is None or again.pk != user.pk:
            raise forms.ValidationError("That is not your password.")
        return password
