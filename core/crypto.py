"""Webhook-handler secrets and extra-header values at rest: Fernet tokens under keys that only
the environment holds.

``JOBS_SECRETS_ENCRYPTION_KEY`` is a list, newest key first. ``MultiFernet`` encrypts with the
first and decrypts with any, so a key is rotated by prepending the new one, re-encrypting
(``secret_rotate``, or re-saving each handler) and only then dropping the old one. The
database holds ciphertext only: a dump or a SQL injection reveals no webhook credential.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnavailable(Exception):
    """A stored secret cannot be decrypted (wrong or rotated-away key, or not a token)."""


def _keys() -> list[str]:
    keys = settings.JOBS_SECRETS_ENCRYPTION_KEY
    return [keys] if isinstance(keys, str) else [k for k in keys if k]


def secrets_fernet() -> MultiFernet:
    """The configured keys; ImproperlyConfigured (naming the setting, never a key) if unusable."""
    keys = _keys()
    if not keys:
        raise ImproperlyConfigured("JOBS_SECRETS_ENCRYPTION_KEY is not set: webhook secrets cannot be stored.")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "JOBS_SECRETS_ENCRYPTION_KEY holds a value that is not a Fernet key (32 url-safe base64-encoded bytes)."
        ) from None


def secret_encrypt(plaintext: str) -> str:
    """The value to store in ``WebhookHandler.secret``; an empty secret stays empty."""
    if not plaintext:
        return ""
    return secrets_fernet().encrypt(plaintext.encode()).decode()


def secret_decrypt(stored: str) -> str:
    if not stored:
        return ""
    try:
        return secrets_fernet().decrypt(stored.encode()).decode()
    except InvalidToken:
        # Say what is wrong without echoing the stored value.
        raise SecretUnavailable("the stored secret cannot be decrypted with JOBS_SECRETS_ENCRYPTION_KEY") from None


def secret_rotate(stored: str) -> str:
    """Re-encrypt a stored secret under the newest key."""
    return secrets_fernet().rotate(stored.encode()).decode() if stored else ""


def headers_decrypt(stored: dict[str, str]) -> dict[str, str]:
    """A handler's extra headers to send. Stored, each value is a token (``secret_encrypt``):
    people put tokens in headers. SecretUnavailable names a header that cannot be decrypted."""
    headers = {}
    for name, value in (stored or {}).items():
        try:
            headers[name] = secret_decrypt(value)
        except SecretUnavailable:
            raise SecretUnavailable(
                f"the stored value of extra header {name!r} cannot be decrypted with JOBS_SECRETS_ENCRYPTION_KEY"
            ) from None
    return headers
