"""System checks for the notifications settings (``manage.py check``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks


def notifications_settings_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    parts = urlsplit(settings.SITE_URL)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        errors.append(
            checks.Error(
                "SITE_URL must be an absolute http(s) URL.", hint=repr(settings.SITE_URL), id="notifications.E001"
            )
        )
    production = getattr(settings, "PRODUCTION", False)
    if production and getattr(settings, "JOBS_HTTP_GUARD_ALLOW_LOOPBACK", False):
        errors.append(checks.Error("JOBS_HTTP_GUARD_ALLOW_LOOPBACK is for tests only.", id="notifications.E002"))
    for alias in getattr(settings, "NOTIFICATIONS_ATTACHMENT_STORAGES", []):
        if alias not in settings.STORAGES:
            errors.append(
                checks.Error(
                    f"NOTIFICATIONS_ATTACHMENT_STORAGES names {alias!r}, which is not a key of STORAGES.",
                    id="notifications.E003",
                )
            )
    return errors
