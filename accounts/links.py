"""Absolute links in customer e-mails, built from SITE_URL and a path setting."""

from __future__ import annotations

from django.conf import settings


def site_link(path: str, **values) -> str:
    """``SITE_URL`` + ``path`` with ``{account_id}``-style fields filled in."""
    return settings.SITE_URL.rstrip("/") + "/" + path.format(**values).lstrip("/")
