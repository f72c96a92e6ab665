"""Running a job whose handler is a WebhookHandler: one guarded HTTP call per run.

1. Decrypt the handler's secret and extra-header values (they never leave this module except
   in the request itself).
2. POST (or PUT; GET sends the fields as query parameters) ``{job, run_id, scheduled_for,
   triggered_by, config}`` with the handler's auth, through ``core.http_guard`` (http/https
   only, no private/loopback/link-local/metadata address, checked again after DNS and on
   every redirect; connect and read timeouts). Redirects are followed only within the
   handler's own origin (scheme, host, port): the auth and extra headers go nowhere else. A
   redirect to another origin is not followed and fails the run, naming where it pointed.
3. 2xx is success; any other status, a refused destination, a network error or a timeout
   is a failure recorded with the status and a bounded, redacted excerpt of the body.

Whatever is recorded or logged shows the auth as ``Bearer [redacted]`` / ``Basic [redacted]`` /
``[redacted]`` and every header value but the harmless ones (``SHOWN_HEADERS``) as
``[redacted]``; the response's reason phrase and body go through ``core.redaction.redact``
with the secret's forms and the header values before the body is cut to its excerpt, so no
piece of a secret that straddles the cut survives.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from urllib.parse import urlencode

import requests
from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import ImproperlyConfigured

from core.crypto import SecretUnavailable, headers_decrypt, secret_decrypt
from core.http_guard import DestinationRefused, guarded_request
from core.redaction import MASK, MIN_LITERAL, redact
from jobs.models import JobRun, WebhookHandler
from jobs.running.execution import Outcome, outcome_bounded

logger = logging.getLogger(__name__)

Status = JobRun.Status
Auth = WebhookHandler.Auth
EXCERPT_CHARS = 2000
MAX_BODY_BYTES = 64 * 1024
CONNECT_TIMEOUT = 5.0
# Header values shown in the run's output; every other value is [redacted].
SHOWN_HEADERS = {"accept", "content-type", "user-agent", "x-cronhouse-run"}


def stored_handler_secrets() -> set[str]:
    """Every handler's secret (and its basic-auth pair), for ``redact(stored=True)`` (registered
    in apps.py)."""
    values = set()
    rows = WebhookHandler.objects.exclude(secret="").values_list("secret", "auth", "auth_username")
    for stored, auth, username in rows:
        try:
            secret = secret_decrypt(stored)
        # A secret nobody can decrypt (wrong or missing JOBS_SECRETS_ENCRYPTION_KEY) cannot be
        # sent, so cannot leak; redacting must never fail the text it protects.
        except (SecretUnavailable, ImproperlyConfigured):
            continue
        values.add(secret)
        if auth == WebhookHandler.Auth.BASIC:
            values.add(f"{username}:{secret}")  # its base64 form is the Authorization: Basic token
    return values


def stored_header_values() -> set[str]:
    """Every handler's extra-header values, for ``redact(stored=True)`` (registered in apps.py)."""
    values = set()
    for stored in WebhookHandler.objects.values_list("extra_headers", flat=True):
        try:
            values.update(headers_decrypt(stored).values())
        except (SecretUnavailable, ImproperlyConfigured):  # what nobody can decrypt is never sent
            pass
    return values


def webhook_payload(run: JobRun) -> dict:
    return {
        "job": run.job.name,
        "run_id": run.pk,
        "scheduled_for": run.scheduled_for.isoformat() if run.scheduled_for else None,
        "triggered_by": run.triggered_by,
        "config": run.job.config or {},
    }


def auth_headers(handler: WebhookHandler, secret: str) -> tuple[dict, dict]:
    """(headers to send, the same headers as they may be shown) for the handler's auth."""
    if handler.auth == Auth.BEARER:
        return {"Authorization": f"Bearer {secret}"}, {"Authorization": f"Bearer {MASK}"}
    if handler.auth == Auth.BASIC:
        token = base64.b64encode(f"{handler.auth_username}:{secret}".encode()).decode()
        return {"Authorization": f"Basic {token}"}, {"Authorization": f"Basic {MASK}"}
    if handler.auth in (Auth.API_KEY, Auth.CUSTOM_HEADER):
        name = handler.auth_header_name or "X-API-Key"
        return {name: secret}, {name: MASK}
    return {}, {}


def _secrets_in(handler: WebhookHandler, secret: str, headers: dict) -> list[str]:
    """Every form in which the secret could come back: itself, and basic auth's base64 token
    (an echoed ``Bearer <secret>`` then reads ``Bearer [redacted]``)."""
    forms = [secret]
    if handler.auth == Auth.BASIC:
        forms.append(headers["Authorization"].split(" ", 1)[1])
    return sorted({f for f in forms if f}, key=len, reverse=True)


def _headers_shown(headers: dict) -> dict:
    return {name: value if name.lower() in SHOWN_HEADERS else MASK for name, value in headers.items()}


def _request_lines(method: str, url: str, shown_headers: dict) -> str:
    return "\n".join([f"{method} {url}", *(f"{name}: {value}" for name, value in shown_headers.items())])


def webhook_execute(*, run: JobRun) -> Outcome:
    """Call the run's webhook handler; every failure becomes an Outcome, never an exception."""
    handler = run.job.webhook_handler
    try:
        secret = secret_decrypt(handler.secret)
        extra = headers_decrypt(handler.extra_headers)
    except SecretUnavailable as exc:
        return outcome_bounded(Status.FAILED, error=f"Webhook handler {handler.name}: {exc}.")
    sent_auth, shown_auth = auth_headers(handler, secret)
    headers = {**extra, "X-Cronhouse-Run": str(run.pk), **sent_auth}
    shown = {**_headers_shown(extra), "X-Cronhouse-Run": str(run.pk), **shown_auth}
    # Header values an echoing receiver could send back; shorter ones are no tokens, and
    # masking them would garble the excerpt.
    echoed = [v for n, v in extra.items() if n.lower() not in SHOWN_HEADERS and len(v) >= MIN_LITERAL]
    hidden = sorted({*_secrets_in(handler, secret, sent_auth), *echoed}, key=len, reverse=True)
    payload = webhook_payload(run)
    method, url, body = handler.method, handler.url, payload
    if method == WebhookHandler.Method.GET:
        query = {**payload, "config": json.dumps(payload["config"]), "scheduled_for": payload["scheduled_for"] or ""}
        url, body = f"{url}{'&' if '?' in url else '?'}{urlencode(query)}", None
    timeout = min(handler.timeout_seconds, run.job.timeout_seconds)
    request_text = _request_lines(method, url, shown)
    started = time.monotonic()
    try:
        response = guarded_request(
            method,
            url,
            headers=headers,
            json=body,
            connect_timeout=min(CONNECT_TIMEOUT, timeout),
            read_timeout=timeout,
            cross_origin_redirects=False,
            max_body_bytes=MAX_BODY_BYTES,
        )
    except DestinationRefused as exc:
        return _failed(handler, request_text, Status.FAILED, f"Refused by the outbound-HTTP guard: {exc}", hidden)
    except (requests.Timeout, SoftTimeLimitExceeded):
        error = f"Timed out after {timeout} s waiting for {method} {handler.url}."
        return _failed(handler, request_text, Status.TIMED_OUT, error, hidden)
    except requests.RequestException as exc:
        return _failed(handler, request_text, Status.FAILED, f"{type(exc).__name__}: {exc}", hidden)
    elapsed_ms = round((time.monotonic() - started) * 1000)
    return _outcome(handler, response, request_text, elapsed_ms, hidden)


def _outcome(handler, response, request_text: str, elapsed_ms: int, hidden: list[str]) -> Outcome:
    # Redacted whole, then cut: cutting first could leave the head of a secret that straddles the cut.
    excerpt = redact(response.content.decode("utf-8", "replace"), extra=hidden)[:EXCERPT_CHARS]
    reason = redact(response.reason or "", extra=hidden)
    status_line = f"-> HTTP {response.status_code} {reason} in {elapsed_ms} ms".rstrip()
    output = f"{request_text}\n\n{status_line}\n{excerpt}"
    summary = {"http_status": response.status_code, "elapsed_ms": elapsed_ms, "response_bytes": len(response.content)}
    logger.info("webhook %s %s -> %s in %s ms", handler.name, handler.url, response.status_code, elapsed_ms)
    if 200 <= response.status_code < 300:
        return outcome_bounded(Status.SUCCEEDED, summary=summary, output=output, hidden=hidden)
    first = excerpt.strip().splitlines()[0][:300] if excerpt.strip() else "(empty body)"
    if response.is_redirect:  # only a redirect to another origin comes back unfollowed
        location = redact(response.headers["Location"], extra=hidden)[:300]
        first = (
            f"redirects to {location}, another origin; not followed, so the handler's auth and headers "
            "go only to its own host. Set the handler's URL to the final address."
        )
    error = f"HTTP {response.status_code} from {handler.method} {handler.url}: {first}"
    return outcome_bounded(Status.FAILED, summary=summary, output=output, error=error, hidden=hidden)


def _failed(handler, request_text: str, status: str, error: str, hidden: list[str]) -> Outcome:
    error = redact(error, extra=hidden)
    logger.warning("webhook %s %s failed: %s", handler.name, handler.url, error)
    return outcome_bounded(status, output=f"{request_text}\n\n-> {error}", error=error, hidden=hidden)
