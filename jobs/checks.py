"""System checks for the job platform's own settings: warnings at start, not surprises later."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

MIN_API_KEY_LENGTH = 32
# Values people paste from examples; the API refuses them like an unset key.
PLACEHOLDER_API_KEYS = {
    "change-me",
    "changeme",
    "secret",
    "replace-me",
    "your-secret-key",
    "jobs-secret-key",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
}


def api_key_problem(key: str) -> str | None:
    """Why ``key`` cannot guard the API, or None if it can."""
    if not key:
        return "JOBS_SECRET_KEY is not set"
    if len(key) < MIN_API_KEY_LENGTH:
        return f"JOBS_SECRET_KEY is shorter than {MIN_API_KEY_LENGTH} characters"
    lowered = key.lower()
    if lowered in PLACEHOLDER_API_KEYS or len(set(lowered)) < 4 or "change" in lowered and "me" in lowered:
        return "JOBS_SECRET_KEY is a placeholder"
    return None


@checks.register(checks.Tags.security)
def check_api_key(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """JOBS_SECRET_KEY is the bootstrap key: unset or weak it is refused (W001); set, it still
    works but is one key shared by every scheduler, limited to nothing, rotated only with downtime (W004)."""
    problem = api_key_problem(getattr(settings, "JOBS_SECRET_KEY", ""))
    if problem is None:
        return []
    return [
        checks.Warning(
            f"{problem}: the HTTP trigger API (/api/jobs/...) refuses every request without a named API key.",
            hint="Create a named key: manage.py create_api_key NAME (docs/permissions.md). Once every scheduler "
            "has one, leave JOBS_SECRET_KEY unset and add jobs.W001 to SILENCED_SYSTEM_CHECKS.",
            id="jobs.W001",
        )
    ]


@checks.register(checks.Tags.security)
def check_bootstrap_api_key(app_configs, **kwargs) -> list[checks.CheckMessage]:
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


@checks.register(checks.Tags.security)
def check_secrets_encryption_key(app_configs, **kwargs) -> list[checks.CheckMessage]:
    from .crypto import secrets_fernet

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


@checks.register(checks.Tags.security)
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


@checks.register()
def check_alert_recipients(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Where job alerts go: JOBS_ALERT_RECIPIENTS, else the superusers' addresses (said as info),
    else nowhere (W005). Reads the users table: before the first migrate it says nothing."""
    from django.db import DatabaseError

    from .health import alert_routing_text

    try:
        text, nowhere = alert_routing_text()
    except DatabaseError:
        return []
    if nowhere:
        hint = "Set JOBS_ALERT_RECIPIENTS (comma-separated addresses), or give a superuser an e-mail address."
        return [checks.Warning(text, hint=hint, id="jobs.W005")]
    return [checks.Info(text, id="jobs.I005")] if text else []
