"""Intercom's official Python library (python-intercom), with every connection through the guard.

python-intercom takes its own ``httpx.Client`` (``httpx_client=``) and ``base_url``. We give it
one whose transport runs each request through ``jobs.http_guard``'s public checks:

1. ``url_check`` on every request (redirect hops included: the client does not follow them);
2. a network backend (httpcore's documented ``NetworkBackend`` interface) that resolves the host
   with ``resolve_checked`` (every address allowed, or nothing is sent) and connects to the
   checked address itself, so DNS cannot answer differently between check and connect; TLS
   still verifies the certificate for the host name (httpcore passes it as the server name);
3. no proxies (``trust_env=False``), connect/read timeouts, and a bounded response body.

Retries are ours (``call_with_retries``), not the library's: a 429 waits until Intercom's
``X-RateLimit-Reset`` (bounded by ``INTERCOM_MAX_RATE_LIMIT_WAIT_SECONDS``); a 5xx, a 409 or a
network error backs off exponentially; anything else fails at once.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

import httpcore
import httpx
from django.conf import settings
from intercom import Intercom
from intercom.core.api_error import ApiError

from jobs.http_guard import DestinationRefused, resolve_checked, url_check

T = TypeVar("T")
MAX_BODY_BYTES = 1 << 20
RETRYABLE_STATUSES = {409}  # Intercom's answer to a create racing a contact it is still indexing


class IntercomNotConfigured(Exception):
    pass


class GuardedNetworkBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self.inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            infos = resolve_checked(host, port)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        error: Exception | None = None
        for *_, sockaddr in infos:
            try:
                return self.inner.connect_tcp(
                    sockaddr[0],
                    sockaddr[1],
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"{host}: no address")

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise DestinationRefused("Refused: the outbound-HTTP guard does not connect to Unix sockets.")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport whose every connection is checked by the outbound-HTTP guard."""

    def __init__(self) -> None:
        self.pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=GuardedNetworkBackend()
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url_check(str(request.url))
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = self.pool.handle_request(core_request)
            try:
                body = bounded_read(response)
            finally:
                response.close()
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc), request=request) from exc
        except httpcore.ConnectError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise httpx.TransportError(str(exc), request=request) from exc
        return httpx.Response(status_code=response.status, headers=response.headers, content=body, request=request)

    def close(self) -> None:
        self.pool.close()


def bounded_read(response: httpcore.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_stream():
        chunks.append(chunk[: MAX_BODY_BYTES - size])
        size += len(chunks[-1])
        if size >= MAX_BODY_BYTES:
            break
    return b"".join(chunks)


def intercom_client() -> Intercom:
    """The official client on a guarded transport; IntercomNotConfigured without a token."""
    token = settings.INTERCOM_ACCESS_TOKEN
    if not token:
        raise IntercomNotConfigured("INTERCOM_ACCESS_TOKEN is not set: intercom-sync cannot push contacts.")
    http = httpx.Client(
        transport=GuardedTransport(),
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(settings.INTERCOM_TIMEOUT_SECONDS, connect=5.0),
    )
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
        except httpx.TransportError:
            if attempt == attempts:
                raise
            wait = backoff(attempt)
        sleep(wait)
    raise AssertionError("unreachable")
