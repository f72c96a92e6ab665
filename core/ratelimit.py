"""Who the API's rate limit counts, and the cache that keeps counting while the shared one is down.

A request is counted as one of (``client_identity``):

1. the key holder: a request with the right bearer token, counted per key as a hash of the key
   (django-ratelimit hashes it again into the cache key; the token itself is never stored);
2. a staff user: a staff session without a token, counted per user;
3. an address: everything else (no token, a wrong token, a non-staff session), counted per
   client address, so anonymous traffic from an address never uses up what the key holder on
   the same address (a shared NAT, the same host) may send.

The address is REMOTE_ADDR unless ``TRUSTED_PROXY_HOPS`` says how many reverse proxies in front
of the web server append to ``X-Forwarded-For``: then it is the entry the outermost trusted proxy
wrote. Entries left of it are whatever the client sent, so they are never read. A missing, short
or malformed header falls back to REMOTE_ADDR, never to an error. IPv6 addresses count per /64,
the block one host is usually given.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.locmem import LocMemCache

logger = logging.getLogger(__name__)

IPV6_PREFIX = 64
# While the shared cache fails, each thread asks it again only this often (seconds), so an
# unreachable Redis costs one connection timeout per thread and interval, not one per request.
SHARED_CACHE_RETRY_SECONDS = 5.0


def client_identity(request, *, key: str | None = None, user=None) -> str:
    """The rate-limit bucket of ``request``: the matched API ``key``, a staff ``user``, or the address."""
    if key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()
    if user is not None:
        return f"user:{user.pk}"
    return "address:" + client_address(request)


def client_address(request) -> str:
    """The client's address (IPv6: its /64) as this deployment can vouch for it; see the module doc."""
    remote = _address(request.META.get("REMOTE_ADDR", ""))
    hops = settings.TRUSTED_PROXY_HOPS
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    candidate = _address(forwarded[-hops]) if 0 < hops <= len(forwarded) else None
    address = candidate or remote
    if address is None:
        # No usable REMOTE_ADDR (a Unix socket without a trusted proxy): one shared bucket.
        return "unknown"
    if address.version == 6:
        # From the integer: a scoped address (fe80::1%eth0) has no network of its own.
        return str(ipaddress.IPv6Network((int(address), IPV6_PREFIX), strict=False).network_address)
    return str(address)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class FallbackCache(BaseCache):
    """The rate limiter's cache: the shared cache named by LOCATION (Redis, so every web process
    shares one count) and, while that one fails, this process's memory.

    During an outage each web process limits on its own, so a client may get up to (number of
    web processes) x the limit per window: a looser limit, never an error page and never no limit.
    Only the operations django-ratelimit uses are provided.
    """

    def __init__(self, location: str, params: dict) -> None:
        super().__init__(params)
        self.shared_alias = location
        # LocMemCache keeps its data per name in the process, so every thread counts in one place.
        self.local = LocMemCache(f"ratelimit-fallback-{location}", {})
        self.retry_at = 0.0

    def _call(self, method: str, *args, **kwargs):
        if time.monotonic() >= self.retry_at:
            try:
                return getattr(caches[self.shared_alias], method)(*args, **kwargs)
            except ValueError:  # incr of a missing key: an answer, not an outage
                raise
            except Exception as exc:  # each cache client raises its own types for "unreachable"
                logger.warning(
                    "rate-limit cache %r unavailable (%s); counting in this process for now",
                    self.shared_alias,
                    type(exc).__name__,
                )
                self.retry_at = time.monotonic() + SHARED_CACHE_RETRY_SECONDS
        return getattr(self.local, method)(*args, **kwargs)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", key, value, timeout, version)

    def get(self, key, default=None, version=None):
        return self._call("get", key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", key, value, timeout, version)

    def incr(self, key, delta=1, version=None):
        return self._call("incr", key, delta, version)

    def delete(self, key, version=None):
        return self._call("delete", key, version)

    def clear(self):
        # Only the local counts: the shared cache may be the broker's Redis database.
        self.local.clear()
