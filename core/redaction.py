"""The one redactor: masks secrets in text that leaves the system (log lines, run output and
errors, alert e-mails, recorded delivery errors) with one mask, ``[redacted]``.

1. Literal values: every setting whose name looks secret (SECRET_KEY, *PASSWORD*, *TOKEN*,
   *_KEY, ...), the database passwords, the caller's ``extra`` values (whatever their length) and, with
   ``stored=True``, the secrets held in the database: webhook handlers' (decrypted) and those of
   every source another app registers with ``register_secret_source``.
   Each literal is masked as itself and in the forms a receiver or a command may echo it in
   (``secret_forms``): base64 (standard and URL-safe, padded or not, also inside a longer
   base64 text), URL-encoded (``quote``, ``quote_plus``) and hex (lower and upper case). A
   basic-auth handler's ``user:password`` is a stored secret too, so its ``Basic`` token (the
   base64 form) is masked.
2. Patterns: ``Bearer ...`` / ``Basic ...`` / ``Token ...``, ``password=...``, ``token: ...``,
   ``api_key=...``, ``secret=...``, ``Authorization: ...``, URL credentials
   ``scheme://user:pass@host``, and signing secrets shaped like ``whsec_...``.

``jobs`` imports no domain app, so an app whose models hold secrets registers a function that
returns them (``notifications`` does so in its ``AppConfig.ready``).

Stored secrets are read once per process, not on every redaction (a run redacts its output,
error and every text of its summary), and kept for at most ``STORED_SECRETS_MAX_AGE`` seconds:

* in the process that saves or deletes a row a source reads, at once: each app connects
  ``stored_secrets_forget`` to its models' ``post_save`` / ``post_delete`` in ``ready()`` (and
  it runs again on commit, so a read between the save and its commit is not kept);
* in every other process (a worker, another web process), and after a bulk ``QuerySet.update()``
  that sends no signal, when the age runs out. A short age rather than a version row or cache
  key bumped on change: it costs no statement per run, needs no shared cache (the embedded mode
  has none across processes), and a changed secret is masked everywhere within seconds. Until
  then only a run of another handler could print the new value: a handler's own run masks its
  own secret explicitly (``extra``).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterable
from functools import cache, lru_cache
from urllib.parse import quote, quote_plus

from django.conf import settings

MASK = "[redacted]"
# Seconds a process keeps the stored secrets it read (see above).
STORED_SECRETS_MAX_AGE = 5.0
SECRET_SETTING_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIAL|_KEY$)", re.I)
# Shorter literal values are left to the patterns: they would match ordinary words.
MIN_LITERAL = 6
# Settings whose names match SECRET_SETTING_NAME but hold names or known-bad values, not
# secrets (masking "password", django-axes' form field name, would mangle ordinary text).
NOT_SECRET_SETTINGS = frozenset(
    {"AXES_PASSWORD_FORM_FIELD", "AUTH_PASSWORD_VALIDATORS", "PASSWORD_HASHERS", "INSECURE_SECRET_KEYS"}
)
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
    stored_secrets_forget()


def _base64_forms(raw: bytes) -> set[str]:
    """The secret's base64 forms, whole and as found inside a longer base64 text.

    Inside a longer text the secret's bytes start at any offset modulo 3, and each offset encodes
    them differently; per offset only the characters made of the secret's bits alone are kept
    (the first one or two mix in the bytes before it, the last one those after it).
    """
    forms = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        forms |= {whole, whole.rstrip("=")}
        for offset in range(3):
            text = encode(b"\0" * offset + raw).decode().rstrip("=")
            start = (0, 2, 3)[offset]  # characters that carry bits of the padding bytes
            end = len(text) - (1 if (offset + len(raw)) % 3 else 0)  # the last one mixes in what follows
            forms.add(text[start:end])
    return forms


@lru_cache(maxsize=4096)
def _forms(value: str) -> frozenset[str]:
    return frozenset(secret_forms(value))


def secret_forms(value: str) -> set[str]:
    """``value`` and its encoded forms (base64, URL-encoded, hex); only forms at least
    ``MIN_LITERAL`` long, since a shorter one would match ordinary text."""
    raw = value.encode("utf-8", "surrogatepass")  # bytes: a lone surrogate must not fail the redaction
    forms = {value, quote(raw), quote(raw, safe=""), quote_plus(raw), raw.hex(), raw.hex().upper()}
    # Encoders differ in the case of %xx escapes.
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), form) for form in set(forms) if "%" in form}
    forms |= _base64_forms(raw)
    return {form for form in forms if len(form) >= MIN_LITERAL}


@cache
def _setting_values() -> frozenset[str]:
    """Read once per process (every log line is redacted); tests that change a setting send
    ``setting_changed``, which forgets them."""
    values = {database.get("PASSWORD") or "" for database in settings.DATABASES.values()}
    for name in dir(settings):
        if name.isupper() and SECRET_SETTING_NAME.search(name) and name not in NOT_SECRET_SETTINGS:
            value = getattr(settings, name, None)
            # A list holds rotated keys (SECRET_KEY_FALLBACKS, JOBS_SECRETS_ENCRYPTION_KEY).
            values.update(
                item for item in (value if isinstance(value, list | tuple) else [value]) if isinstance(item, str)
            )
    return frozenset(values)


@cache
def _setting_forms() -> frozenset[str]:
    return frozenset(form for value in _setting_values() if len(value) >= MIN_LITERAL for form in secret_forms(value))


def setting_values_forget(**kwargs) -> None:
    _setting_values.cache_clear()
    _setting_forms.cache_clear()


# (read at, the stored secrets, the forms of those long enough to mask); None: not read yet.
_stored: tuple[float, frozenset[str], frozenset[str]] | None = None


def _stored_read() -> tuple[float, frozenset[str], frozenset[str]]:
    global _stored
    if _stored is None or time.monotonic() - _stored[0] > STORED_SECRETS_MAX_AGE:
        values: set[str] = set()
        for source in _sources.values():
            values.update(source())
        forms = frozenset(form for value in values if len(value) >= MIN_LITERAL for form in _forms(value))
        _stored = (time.monotonic(), frozenset(values), forms)
    return _stored


def stored_secrets() -> frozenset[str]:
    """Secrets held in the database, read at most every ``STORED_SECRETS_MAX_AGE`` seconds and
    forgotten when a row they come from is saved or deleted in this process."""
    return _stored_read()[1]


def stored_secrets_forget(**kwargs) -> None:
    """Receiver of ``post_save`` / ``post_delete`` of every model a secret source reads: the next
    redaction reads the stored secrets again, now and once the change is committed."""
    global _stored
    _stored = None
    if kwargs.get("sender") is not None:
        from django.db import transaction

        transaction.on_commit(stored_secrets_forget, using=kwargs.get("using"))


def redact(text: str, *, extra: Iterable[str] = (), stored: bool = False) -> str:
    """``text`` with secrets masked. ``stored=True`` also masks the database's secrets.

    The forms of every secret are worked out once per process (``_forms``), then each is
    replaced in the whole text.
    """
    if not text:
        return text
    # The caller's own secrets are masked whatever their length (their encoded forms only from
    # MIN_LITERAL up); longest first, so that a secret containing another is masked whole.
    literals = set(_setting_forms())
    if stored:
        literals |= _stored_read()[2]
    for value in extra:
        if value:
            literals.add(value)
            if len(value) >= MIN_LITERAL:
                literals |= _forms(value)
    for value in sorted(literals, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text
