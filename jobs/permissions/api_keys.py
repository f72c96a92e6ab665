"""Named API keys: made once (shown once), stored as a SHA-256 digest, found by that digest.

Authenticating does the same work for a right, wrong, revoked or missing key: one digest, one
indexed lookup, one ``hmac.compare_digest`` against the named key (or a stand-in) and one
against the JOBS_SECRET_KEY bootstrap key (or a stand-in), so timing tells nothing about a key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs.models import ApiKey
from jobs.permissions.access import BOOTSTRAP

# Marks Cronhouse keys in logs and secret scanners; the 43 characters after it carry 256 bits.
KEY_PREFIX = "chk_"
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
STAND_IN = hashlib.sha256(b"no key").hexdigest()


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


def key_digest(token: str) -> str:
    # surrogatepass: a header carrying a lone surrogate is a wrong key, not an encoding error.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@transaction.atomic
def api_key_create(*, name: str, jobs=(), groups=(), expires_at: datetime | None = None, created_by=None):
    """Make a key; returns (the row, the key). The key is not kept anywhere: show it once.

    Without ``created_by`` the key is ownerless (``manage.py create_api_key``); with it, the key
    works only while that user is active (docs/permissions.md, "API keys and their owner").
    """
    token = new_key()
    key = ApiKey.objects.create(
        name=name,
        digest=key_digest(token),
        expires_at=expires_at,
        created_by=created_by,
        ownerless=created_by is None,
    )
    key.jobs.set(jobs)
    key.groups.set(groups)
    return key, token


def api_key_revoke(*, key: ApiKey, now: datetime | None = None) -> bool:
    """Revoke ``key`` (refused from now on); False if it already was."""
    now = now or timezone.now()
    changed = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
    key.revoked_at = key.revoked_at or now
    return bool(changed)


@dataclass(frozen=True)
class Presented:
    """What a bearer header turned out to be: ``holder`` is an ApiKey, BOOTSTRAP or None (no such
    key); ``refused`` says why a known key may not be used ("" when it may); ``token`` is the
    presented key when it matched (for the rate limit's per-key count), else ""."""

    holder: ApiKey | str | None
    refused: str = ""
    token: str = ""


def bearer_token(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def api_key_authenticate(header: str, *, now: datetime | None = None) -> Presented:
    """Which key a bearer ``header`` carries; see the module doc for why every path does the same work."""
    token = bearer_token(header)
    digest = key_digest(token)
    # The owner comes in the same query: whether it is active is part of the key's validity.
    found = ApiKey.objects.select_related("created_by").filter(digest=digest).first()
    named = hmac.compare_digest(found.digest if found else STAND_IN, digest) and found is not None
    bootstrap = settings.JOBS_SECRET_KEY
    usable = not api_key_problem(bootstrap)
    is_bootstrap = hmac.compare_digest(key_digest(bootstrap if usable else ""), digest) and usable
    if not token:
        return Presented(None)
    if named:
        refused = found.refusal(now)
        return Presented(found, refused, "" if refused else token)
    if is_bootstrap:
        return Presented(BOOTSTRAP, "", token)
    return Presented(None)


def api_key_used(*, key: ApiKey, address: str, now: datetime | None = None) -> None:
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now or timezone.now(), last_used_from=address[:64])


def any_usable_key(now: datetime | None = None) -> bool:
    """Whether the API can be used at all: a valid bootstrap key, or a named key not revoked or
    expired whose owner is active (or that is ownerless)."""
    if not api_key_problem(settings.JOBS_SECRET_KEY):
        return True
    now = now or timezone.now()
    keys = ApiKey.objects.filter(Q(ownerless=True) | Q(created_by__is_active=True), revoked_at__isnull=True)
    return keys.filter(expires_at__isnull=True).exists() or keys.filter(expires_at__gt=now).exists()
