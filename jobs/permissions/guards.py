"""Decorators that guard the surfaces: ``authorize`` for the bearer-token API (named API keys,
the JOBS_SECRET_KEY bootstrap key, or a staff session), ``recent_login_required`` for destructive
dashboard actions, ``action_rate_limited`` for what a person starts (runs, retries, backfills,
acknowledgements). Views show them on top; what a caller may do on a job is ``jobs.permissions.access``."""

from __future__ import annotations

import json
import time
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse, UnreadablePostError
from django.http.request import RawPostDataException
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django_ratelimit.core import get_usage

from core.ratelimit import client_address, client_identity
from jobs.models import ApiKey, AuditEntry
from jobs.models.versions import changes_by
from jobs.permissions.access import BOOTSTRAP, MANAGE_SCHEDULE, may_manage_schedule
from jobs.permissions.api_keys import Presented, any_usable_key, api_key_authenticate, api_key_used
from jobs.permissions.audit import audit_record

# Session key: when this session last proved its password (epoch seconds).
PASSWORD_AT = "jobs_password_at"
MAX_BODY_BYTES = 16 * 1024


# --- recent login --------------------------------------------------------------------------


def password_login_remember(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[PASSWORD_AT] = time.time()


def mark_password_entered(request) -> None:
    request.session[PASSWORD_AT] = time.time()


def has_recent_login(request) -> bool:
    entered = request.session.get(PASSWORD_AT)
    return entered is not None and time.time() - entered <= settings.RECENT_LOGIN_MINUTES * 60


def recent_login_required(view):
    """Destructive actions: the password must have been entered within RECENT_LOGIN_MINUTES."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if has_recent_login(request):
            return view(request, *args, **kwargs)
        messages.warning(
            request,
            f"Enter your password again: this action needs a login within the last "
            f"{settings.RECENT_LOGIN_MINUTES} minutes.",
        )
        back = request.POST.get("next") or reverse("jobs:schedule")
        return redirect(f"{reverse('jobs:reauthenticate')}?{urlencode({'next': back})}")

    return wrapper


# --- permissions ------------------------------------------------------------------------------


def schedule_manager_required(view):
    """The beat schedule's actions (pause/resume, unschedule, purge) need jobs.manage_schedule: 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not may_manage_schedule(request.user):
            raise PermissionDenied(f"needs the permission {MANAGE_SCHEDULE}")
        return view(request, *args, **kwargs)

    return wrapper


# --- people's actions ------------------------------------------------------------------------

# One count per user for every action that starts or records work from the dashboard or admin.
ACTION_RATE_GROUP = "jobs.actions"


def action_limit_reached(request) -> int | None:
    """Count one action by ``request.user`` against JOBS_ACTION_RATE_LIMIT: None while within
    it, else the seconds until the window ends (the action must then record nothing)."""
    usage = get_usage(
        request,
        group=ACTION_RATE_GROUP,
        key=lambda group, request: f"user:{request.user.pk}",
        rate=settings.JOBS_ACTION_RATE_LIMIT,
        increment=True,
    )
    if usage is None or not usage["should_limit"]:
        return None
    return max(int(usage["time_left"]), 1)


def action_limit_message(retry_after: int) -> str:
    return (
        f"Too many actions: at most {settings.JOBS_ACTION_RATE_LIMIT} per user. "
        f"Nothing was done; try again in {retry_after} second{'s' if retry_after != 1 else ''}."
    )


def action_rate_limited(view):
    """POSTs past JOBS_ACTION_RATE_LIMIT (per user, one count for all decorated views) answer 429
    without calling the view: JSON for the page's script (``Accept: application/json``), else a
    page saying so. GETs (a form shown again) are not counted."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method != "POST" or (retry_after := action_limit_reached(request)) is None:
            return view(request, *args, **kwargs)
        message = action_limit_message(retry_after)
        if "application/json" in request.headers.get("Accept", ""):
            response = JsonResponse({"ok": False, "message": message, "retry_after_seconds": retry_after}, status=429)
        else:
            back = request.POST.get("next") or request.headers.get("Referer") or ""
            if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
                back = reverse("jobs:dashboard")
            response = render(request, "jobs/rate_limited.html", {"message": message, "back": back}, status=429)
        response["Retry-After"] = str(retry_after)
        return response

    return wrapper


# --- the bearer-token API --------------------------------------------------------------------


def error(status: int, message: str, **extra) -> JsonResponse:
    response = JsonResponse({"error": message, **extra}, status=status)
    response.refusal = message  # for the request's log line (``authorize``)
    return response


RATE_GROUP = "jobs.api"


def rate_limited(request, identity: str | None = None) -> JsonResponse | None:
    """429 with Retry-After once ``identity`` (``core.ratelimit.client_identity``; by default the
    client's address) passes JOBS_API_RATE_LIMIT."""
    identity = identity or client_identity(request)
    usage = get_usage(
        request,
        group=RATE_GROUP,
        key=lambda group, request: identity,
        rate=settings.JOBS_API_RATE_LIMIT,
        increment=True,
    )
    if usage is None or not usage["should_limit"]:
        return None
    retry_after = max(int(usage["time_left"]), 1)
    response = error(429, "rate limit exceeded", retry_after_seconds=retry_after)
    response["Retry-After"] = str(retry_after)
    return response


def _csrf_refused(request, view) -> bool:
    """The CSRF check the middleware skipped for this exempt view, applied to session callers."""
    return CsrfViewMiddleware(lambda r: None).process_view(request, view, (), {}) is not None


def authorize(view):
    """Guard an API view: who is asking, the rate limit for them, then the answer to a wrong,
    revoked or expired key (or one whose owner is deactivated or deleted), or a staff session's
    CSRF check.

    The key holder is counted per key, a staff session per user, anyone else per address
    (core/ratelimit.py). Sets ``request.api_user`` (the staff user, or None for a key),
    ``request.api_who`` (who asks, for ``jobs.permissions.access``: the user, the ApiKey or BOOTSTRAP) and,
    for POST, PUT and PATCH, parses ``request.json`` (an object, at most 16 KiB). A refusal's reason and who
    asked are left on the request as ``refusal`` and ``caller`` for its one log line
    (``jobs.permissions.refusals``).
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = _authorized(view, request, *args, **kwargs)
        if response.status_code >= 400 and hasattr(response, "refusal"):
            request.refusal = response.refusal
        return response

    return wrapper


def _caller(presented: Presented, staff, header: str | None) -> str:
    """Who asks, as a log line names them: a key by its name, never the key itself."""
    if isinstance(presented.holder, ApiKey):
        return f"API key {presented.holder.name}"
    if presented.holder == BOOTSTRAP:
        return "API key JOBS_SECRET_KEY"
    if staff is not None:
        return staff.get_username()
    return "a wrong key" if header is not None else "anonymous"


def _authorized(view, request, *args, **kwargs):
    header = request.META.get("HTTP_AUTHORIZATION")
    presented = api_key_authenticate(header) if header is not None else Presented(None)
    staff = request.user if header is None and request.user.is_staff else None
    request.caller = _caller(presented, staff, header)
    identity = client_identity(request, key=presented.token or None, user=staff)
    if limited := rate_limited(request, identity):
        return limited
    if presented.refused:
        # A known key used after its end: worth a line in the audit log (which key, from where).
        action = AuditEntry.Action.RUN if request.method == "POST" else AuditEntry.Action.OTHER
        audit_record(
            actor=presented.holder,
            action=action,
            instance=presented.holder,
            address=client_address(request),
            refused=presented.refused,
        )
        return _unauthorized(f"API key refused: {presented.refused}")
    if presented.holder is None and staff is None:
        if not any_usable_key():
            return error(503, "the API is disabled: no API key is configured (manage.py create_api_key)")
        return _unauthorized("missing or wrong bearer token")
    if staff is not None and _csrf_refused(request, view):
        return error(403, "CSRF check failed (a staff session must send the CSRF token)")
    if isinstance(presented.holder, ApiKey):
        api_key_used(key=presented.holder, address=client_address(request))
    request.api_user = staff
    request.api_who = staff or presented.holder
    if request.method in ("POST", "PUT", "PATCH"):
        body = _read_body(request)
        if isinstance(body, JsonResponse):
            return body
        request.json = body
    with changes_by(request.api_who, "api"):  # a key, not the session's user, makes the changes
        return view(request, *args, **kwargs)


def _unauthorized(message: str) -> JsonResponse:
    response = error(401, message)
    response["WWW-Authenticate"] = 'Bearer realm="cronhouse"'
    return response


class DuplicateKey(ValueError):
    """A JSON object names the same key twice."""


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    body = dict(pairs)
    if len(body) != len(pairs):
        seen = set()
        raise DuplicateKey(next(key for key, _ in pairs if key in seen or seen.add(key)))
    return body


def _read_body(request) -> dict | JsonResponse:
    """The JSON object of the body, or the 4xx answer: every malformed body is the client's error."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error(400, "bad Content-Length")
    if declared > MAX_BODY_BYTES:
        return error(413, f"request body over {MAX_BODY_BYTES} bytes")
    try:
        # The WSGI stream is limited to the declared length, checked above.
        raw = request.body
    except RawPostDataException:
        return error(400, "send the request as JSON, not as a form upload")
    except UnreadablePostError:
        # The client stopped sending (core/slow_clients.py timed the read out) or hung up.
        return error(400, "the request body did not arrive in full")
    if len(raw) > MAX_BODY_BYTES:
        return error(413, f"request body over {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw or b"null", object_pairs_hook=_object_without_duplicates)
    except DuplicateKey as exc:
        # {"job": "a", "job": "b"}: JSON parsers disagree on which one counts, so neither does.
        return error(400, f"the body names {json.dumps(exc.args[0])[:100]} twice; give each field once")
    except (ValueError, RecursionError):
        # ValueError covers bad UTF-8 and over-long integers; RecursionError deep nesting ([[[...]]]).
        return error(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return error(400, 'the body must be a JSON object, e.g. {"job": "generate-charges"}')
    return body
