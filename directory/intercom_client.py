"""Intercom's official Python library (python-intercom), with every connection through the guard.

python-intercom takes its own ``httpx.Client`` (``httpx_client=``) and ``base_url``. We give it
``core.http_guard.guarded_httpx_client``, whose every connection the outbound-HTTP guard checks.

Retries are ours (``call_with_retries``), not the library's: a 429 waits until Intercom's
``X-RateLimit-Reset`` (bounded by ``INTERCOM_MAX_RATE_LIMIT_WAIT_SECONDS``); a 5xx, a 409 or a
network error backs off exponentially; anything else fails at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from intercom import Intercom
from intercom.core.api_error import ApiError

from core.http_guard import HttpxTransportError, guarded_httpx_client

T = TypeVar("T")
RETRYABLE_STATUSES = {409}  # Intercom's answer to a create racing a contact it is still indexing


class IntercomNotConfigured(Exception):
    pass


def intercom_client() -> Intercom:
    """The official client on a guarded transport; IntercomNotConfigured without a token."""
    token = settings.INTERCOM_ACCESS_TOKEN
    if not token:
        raise IntercomNotConfigured("INTERCOM_ACCESS_TOKEN is not set: intercom-sync cannot push contacts.")
    http = guarded_httpx_client(timeout=settings.INTERCOM_TIMEOUT_SECONDS)
    return Intercom(token=token, base_url=settings.INTERCOM_API_BASE.rstrip("/"), httpx_client=http)


def rate_limit_wait(headers: dict | None, *, now: float) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (a Unix time), bounded; None when it is absent."""
    values = {key.lower(): value for key, value in (headers or {}).items()}
    try:
        reset = float(values["x-ratelimit-reset"])
    except (KeyError, ValueError):
        return None
    return min(max(reset - now, 0.0), settings.INTERCOM_MAX_RATE_LIMIT_WAIT_SECONDS)


def backoff(attempt: int) -> float:
    return settings.INTERCOM_RETRY_BASE_SECONDS * 2 ** (attempt - 1)


def call_with_retries(call: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()``, again after a 429 (at its reset time), a 5xx, a 409 or a network error, up to
    ``INTERCOM_MAX_ATTEMPTS`` times. ``call`` must be safe to repeat (the sync's upsert is)."""
    attempts = settings.INTERCOM_MAX_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ApiError as exc:
            status = exc.status_code or 0
            if status == 429:
                wait = rate_limit_wait(exc.headers, now=time.time())
                wait = backoff(attempt) if wait is None else wait
            elif status >= 500 or status in RETRYABLE_STATUSES:
                wait = backoff(attempt)
            else:
                raise
            if attempt == attempts:
                raise
        except HttpxTransportError:
            if attempt == attempts:
                raise
            wait = backoff(attempt)
        sleep(wait)
    raise AssertionError("unreachable")
