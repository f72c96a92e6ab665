"""The one redactor: masks secrets in text that leaves the system (log lines, run output and
errors, alert e-mails, recorded delivery errors) with one mask, ``[redacted]``.

1. Literal values: every setting whose name looks secret (SECRET_KEY, *PASSWORD*, *TOKEN*,
   *_KEY, ...), the database passwords, the caller's ``extra`` values (whatever their length) and, with
   ``stored=True``, the secrets held in the database: webhook handlers' (decrypted) and those of
   every source another app registers with ``register_secret_source``.
2. Patterns: ``Bearer ...`` / ``Basic ...`` / ``Token ...``, ``password=...``, ``token: ...``,
   ``api_key=...``, ``secret=...``, ``Authorization: ...``, URL credentials
   ``scheme://user:pass@host``, and signing secrets shaped like ``whsec_...``.

``jobs`` imports no domain app, so an app whose models hold secrets registers a function that
returns them (``notifications`` does so in its ``AppConfig.ready``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

MASK = "[redacted]"
SECRET_SETTING_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIAL|_KEY$)", re.I)
# Shorter literal values are left to the patterns: they would match ordinary words.
MIN_LITERAL = 6
_NOT_MASKED = rf"(?!{re.escape(MASK)})"
_SCHEMES = r"(?:bearer|basic|token)"

PATTERNS = [
    # Authorization: Bearer abc / Basic abc / Token abc
    (re.compile(rf"(?i)\b({_SCHEMES})\s+[A-Za-z0-9\-._~+/]+=*"), r"\1 " + MASK),
    # password=..., "password": "...", api_key: ..., secret=..., access_token=..., Authorization: abc
    # (a value that starts with a scheme is the pattern above's).
    (
        re.compile(
            rf"""(?ix)
            (["']?\b[\w\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key
                            |private[_\-]?key|authorization)
             [\w\-]*["']?\s*[:=]\s*)
            (?!["']?{_SCHEMES}\s){_NOT_MASKED}
            (?:"[^"]*"|'[^']*'|[^\s,;&)}}\]]+)
            """
        ),
        r"\1" + MASK,
    ),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@]+):[^@\s/]+@"), r"\1:" + MASK + "@"),
    # signing secrets as notifications' WebhookEndpoint generates them
    (re.compile(r"\bwhsec_[A-Za-z0-9_\-]+"), MASK),
]

_sources: dict[str, Callable[[], Iterable[str]]] = {}


def register_secret_source(source: Callable[[], Iterable[str]], *, key: str) -> None:
    """Add a function returning secrets stored by another app; ``redact(stored=True)`` masks
    them. Registering the same ``key`` again replaces the function."""
    _sources[key] = source


@cache
def _setting_values() -> frozenset[str]:
    """Read once per process (every log line is redacted); tests that change a setting send
    ``setting_changed``, which forgets them."""
    values = {database.get("PASSWORD") or "" for database in settings.DATABASES.values()}
    for name in dir(settings):
        if name.isupper() and SECRET_SETTING_NAME.search(name):
            value = getattr(settings, name, None)
            if isinstance(value, str):
                values.add(value)
    return frozenset(values)


@receiver(setting_changed, dispatch_uid="jobs.redaction.forget_setting_values")
def _forget_setting_values(**kwargs) -> None:
    _setting_values.cache_clear()


def _handler_secrets() -> set[str]:
    from .crypto import SecretUnavailable, secret_decrypt
    from .models import WebhookHandler

    values = set()
    for stored in WebhookHandler.objects.exclude(secret="").values_list("secret", flat=True):
        try:
            values.add(secret_decrypt(stored))
        # A secret nobody can decrypt (wrong or missing JOBS_SECRETS_ENCRYPTION_KEY) cannot be
        # sent, so cannot leak; redacting must never fail the text it protects.
        except (SecretUnavailable, ImproperlyConfigured):
            pass
    return values


def stored_secrets() -> set[str]:
    """Secrets held in the database, read fresh: they change in the admin."""
    values = _handler_secrets()
    for source in _sources.values():
        values.update(source())
    return values


def redact(text: str, *, extra: Iterable[str] = (), stored: bool = False) -> str:
    """``text`` with secrets masked. ``stored=True`` also masks the database's secrets (queries)."""
    if not text:
        return text
    literals = set(_setting_values())
    if stored:
        literals |= stored_secrets()
    # The caller's own secrets are masked whatever their length; longest first, so that a secret
    # containing another is masked whole.
    literals = {v for v in literals if len(v) >= MIN_LITERAL} | {v for v in extra if v}
    for value in sorted(literals, key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text
