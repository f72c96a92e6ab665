"""System checks for the job platform's own settings: warnings at start, not surprises later."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from jobs.permissions.api_keys import api_key_problem

# The bootstrap key's checks are deployment checks (`manage.py check --deploy`, with Django's own
# security checks): advice for whoever deploys, not a wall of text ahead of every command's output.
# Unset is no problem at all: it is where named API keys lead.


def check_api_key(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """JOBS_SECRET_KEY set but short or a placeholder: the API refuses it (W001)."""
    key = getattr(settings, "JOBS_SECRET_KEY", "")
    problem = api_key_problem(key) if key else None
    if problem is None:
        return []
    return [
        checks.Warning(
            f"{problem}: the HTTP trigger API (/api/jobs/...) refuses every request made with it; "
            "only named API keys work.",
            hint="Unset JOBS_SECRET_KEY and give each scheduler a named key: manage.py create_api_key NAME "
            "(docs/permissions.md).",
            id="jobs.W001",
        )
    ]


def check_bootstrap_api_key(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """JOBS_SECRET_KEY set and usable: one key shared by every scheduler, limited to nothing, rotated
    only with a restart (W004)."""
    if api_key_problem(getattr(settings, "JOBS_SECRET_KEY", "")) is None:
        return [
            checks.Warning(
                "JOBS_SECRET_KEY is set: one bootstrap key shared by every scheduler, allowed to run every job "
                "and rotated only by a restart.",
                hint="Give each scheduler its own key (manage.py create_api_key NAME --job JOB, or the admin's "
                "API keys), switch the schedulers to them, then unset JOBS_SECRET_KEY (docs/permissions.md).",
                id="jobs.W004",
            )
        ]
    return []


def check_secrets_encryption_key(app_configs, **kwargs) -> list[checks.CheckMessage]:
    from core.crypto import secrets_fernet

    try:
        secrets_fernet()
    except ImproperlyConfigured as exc:
        return [
            checks.Warning(
                f"{exc} Saving a webhook handler with a secret, and running one, will fail.",
                hint='Set JOBS_SECRETS_ENCRYPTION_KEY, e.g. python3 -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())".',
                id="jobs.W002",
            )
        ]
    return []


def check_client_address_setting(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """RATELIMIT_IP_META_KEY named a header any client can send; it is no longer read."""
    if not getattr(settings, "RATELIMIT_IP_META_KEY", None):
        return []
    return [
        checks.Warning(
            "RATELIMIT_IP_META_KEY is set but no longer read: the API's rate limit would have "
            "believed a header any client can send.",
            hint="Unset it; behind reverse proxies set TRUSTED_PROXY_HOPS to how many of them append to "
            "X-Forwarded-For (docs/api.md).",
            id="jobs.W003",
        )
    ]


def _alert_routing() -> tuple[str, bool] | None:
    """(text, nowhere) from the users table; None before the first migrate."""
    from django.db import DatabaseError

    from jobs.operations.health import alert_routing_text

    try:
        return alert_routing_text()
    except DatabaseError:
        return None


def check_alert_recipients(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Job alerts with nowhere to go (no JOBS_ALERT_RECIPIENTS, no superuser with an address): W005."""
    routing = _alert_routing()
    if routing is None or not routing[1]:
        return []
    hint = "Set JOBS_ALERT_RECIPIENTS (comma-separated addresses), or give a superuser an e-mail address."
    return [checks.Warning(routing[0], hint=hint, id="jobs.W005")]


def check_alert_routing(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Where job alerts go when JOBS_ALERT_RECIPIENTS is empty (the superusers): I005. Information, so
    only `manage.py check --deploy` says it, not every command."""
    routing = _alert_routing()
    if routing is None or routing[1] or not routing[0]:
        return []
    return [checks.Info(routing[0], id="jobs.I005")]
