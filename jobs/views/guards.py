"""Decorators that guard the surfaces: ``authorize`` for the bearer-token API,
``recent_login_required`` for destructive dashboard actions. Views show them on top."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.signals import user_logged_in
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import JsonResponse
from django.http.request import RawPostDataException
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django_ratelimit import core as ratelimit_core
from django_ratelimit.core import get_usage

from ..checks import api_key_problem
from .rate_counter import RateCounter

# Session key: when this session last proved its password (epoch seconds).
PASSWORD_AT = "jobs_password_at"
MAX_BODY_BYTES = 16 * 1024


# --- recent login --------------------------------------------------------------------------


@receiver(user_logged_in, dispatch_uid="jobs.views.guards.password_login")
def _remember_password_login(sender, request, user, **kwargs) -> None:
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


# --- the bearer-token API --------------------------------------------------------------------


def error(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def bearer_matches(header: str, key: str) -> bool:
    """One code path for a missing, malformed, wrong or right token.

    Both sides are hashed to 32 bytes first, so ``hmac.compare_digest`` always compares equal
    lengths and its time depends on neither the key's length nor how much of it a guess got right.
    """
    scheme, _, token = header.partition(" ")
    presented = token.strip() if scheme.lower() == "bearer" else ""
    same = hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), hashlib.sha256(key.encode()).digest())
    return same and bool(presented)


def rate_limited(request) -> JsonResponse | None:
    """429 with Retry-After once this client (by address) passes JOBS_API_RATE_LIMIT."""
    usage = _api_usage(request)
    if usage is None or not usage["should_limit"]:
        return None
    retry_after = max(int(usage["time_left"]), 1)
    response = error(429, "rate limit exceeded", retry_after_seconds=retry_after)
    response["Retry-After"] = str(retry_after)
    return response


RATE_GROUP = "jobs.api"
_redis_clients = threading.local()
_counter = RateCounter()


def _api_usage(request) -> dict | None:
    """django-ratelimit's count for this client; at most one Redis round trip when the cache is Redis.

    ``get_usage`` costs three round trips on Django's Redis cache (SET NX, then EXISTS and
    INCRBY) and a new redis client for each, a large part of a trigger. The Redis path keeps
    the library's key, window and expiry (so both count the same thing) and counts with
    ``rate_counter``: one INCRBY per request under ordinary limits, one per batch far from a
    high one. Key, window and expiry come from django-ratelimit's own helpers (private, but the
    version is pinned); tests/surfaces/test_api_trigger_path.py fails if the two counts part.
    """
    rate = settings.JOBS_API_RATE_LIMIT
    cache_alias = getattr(settings, "RATELIMIT_USE_CACHE", "default")
    cache = caches[cache_alias]
    if not isinstance(cache, RedisCache) or not getattr(settings, "RATELIMIT_ENABLE", True):
        return get_usage(request, group=RATE_GROUP, key="ip", rate=rate, increment=True)
    rate_key = _rate_key(request, cache_alias, cache, rate)
    expiry = rate_key.period + ratelimit_core.EXPIRATION_FUDGE
    count = _counter.count(
        _redis_client(cache), rate_key.key, limit=rate_key.limit, window_ends=rate_key.window, expiry=expiry
    )
    return {
        "count": count,
        "limit": rate_key.limit,
        "should_limit": count > rate_key.limit,
        "time_left": rate_key.window - int(time.time()),
    }


@dataclass(frozen=True)
class _RateKey:
    """django-ratelimit's limit, window and counter key for one client address and rate."""

    limit: int
    period: int  # seconds
    window: int  # the library's window value: when the window ends, epoch seconds
    key: str  # the counter's key in the cache

    def current(self, now: int) -> bool:
        # The library's window for ``now`` is the first second at or after ``now`` that sits at
        # the client's fixed offset within a period, so one value holds for every ``now`` in
        # (window - period, window].
        return self.window - self.period < now <= self.window


# (cache alias, rate, the client's address as the request gave it) -> its _RateKey. Emptied
# when full: a client's key is rebuilt once per window anyway, so this only bounds memory.
_rate_keys: dict[tuple, _RateKey] = {}
MAX_REMEMBERED_RATE_KEYS = 4096


def _rate_key(request, cache_alias: str, cache: RedisCache, rate: str) -> _RateKey:
    """The client's _RateKey, remembered for the rest of its window.

    Building it from django-ratelimit's helpers (ipaddress normalisation, crc32, the hash, the
    cache's key function) took ~18 us of a trigger's ~750 us of CPU, remembering it ~1 us, and
    it changes only with the client's address and the window. Built by the same helpers
    whenever it is not remembered, so the key stays the library's.
    """
    address_given = _address_as_given(request)
    remembered_as = (cache_alias, rate, address_given)
    remembered = _rate_keys.get(remembered_as) if address_given is not None else None
    if remembered is not None and remembered.current(int(time.time())):
        return remembered
    limit, period = ratelimit_core._split_rate(rate)
    address = ratelimit_core._get_ip(request)
    window = ratelimit_core._get_window(address, period)
    key = cache.make_and_validate_key(
        ratelimit_core._make_cache_key(RATE_GROUP, window, rate, address, ratelimit_core.ALL)
    )
    rate_key = _RateKey(limit=limit, period=period, window=window, key=key)
    if address_given is not None:
        if len(_rate_keys) >= MAX_REMEMBERED_RATE_KEYS:
            _rate_keys.clear()
        _rate_keys[remembered_as] = rate_key
    return rate_key


def _address_as_given(request) -> str | None:
    """The request's value that django-ratelimit's ``_get_ip`` normalises into the client address,
    or None (nothing remembered) when RATELIMIT_IP_META_KEY names a function that supplies it."""
    meta_key = getattr(settings, "RATELIMIT_IP_META_KEY", None) or "REMOTE_ADDR"
    if callable(meta_key) or "." in meta_key:
        return None
    return request.META.get(meta_key)


@receiver(setting_changed, dispatch_uid="jobs.views.guards.rate_keys")
def _forget_rate_keys(*, setting, **kwargs) -> None:
    # The masks, key prefix, hash and cache key function shape a key (tests change them).
    if setting == "CACHES" or setting.startswith("RATELIMIT_"):
        _rate_keys.clear()


def _redis_client(cache: RedisCache):
    """One client per thread and cache (Django's Redis cache builds a new one per call)."""
    held = getattr(_redis_clients, "held", None)
    if held is None or held[0] is not cache:
        held = _redis_clients.held = (cache, cache._cache.get_client(write=True))
    return held[1]


def _csrf_refused(request, view) -> bool:
    """The CSRF check the middleware skipped for this exempt view, applied to session callers."""
    return CsrfViewMiddleware(lambda r: None).process_view(request, view, (), {}) is not None


def authorize(view):
    """Guard an API view: rate limit, then a bearer token or a staff session (with CSRF).

    Sets ``request.api_user`` (the staff user, or None for the token) and, for POST, parses
    ``request.json`` (an object, at most 16 KiB).
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if limited := rate_limited(request):
            return limited
        key = settings.JOBS_SECRET_KEY
        if api_key_problem(key):
            return error(503, "the API is disabled: JOBS_SECRET_KEY is not configured")
        header = request.META.get("HTTP_AUTHORIZATION")
        if header is not None or not request.user.is_staff:
            if not bearer_matches(header or "", key):
                response = error(401, "missing or wrong bearer token")
                response["WWW-Authenticate"] = 'Bearer realm="cronhouse"'
                return response
            request.api_user = None
        else:
            if _csrf_refused(request, view):
                return error(403, "CSRF check failed (a staff session must send the CSRF token)")
            request.api_user = request.user
        if request.method == "POST":
            body = _read_body(request)
            if isinstance(body, JsonResponse):
                return body
            request.json = body
        return view(request, *args, **kwargs)

    return wrapper


def _read_body(request) -> dict | JsonResponse:
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
    if len(raw) > MAX_BODY_BYTES:
        return error(413, f"request body over {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        return error(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return error(400, 'the body must be a JSON object, e.g. {"job": "generate-charges"}')
    return body
