"""The API's per-client request count in Redis: exact near the limit, batched far from it.

One Redis INCR per request costs about 0.5 ms of a web process's CPU on a small VM (a
syscall and a cross-process wake-up each way). Under a limit of at least
``MIN_BATCHED_LIMIT`` a process may instead admit a request on what it knows: its own count
not yet added to Redis, plus the last total Redis returned, plus ``HEADROOM`` for what the
other processes may hold. The count is added with one INCRBY by the request that fills a
batch or finds the last total older than ``MAX_AGE_SECONDS``; that request, and every request
under an ordinary limit or near a high one, is decided on the total Redis returns, exactly as
with one INCR each. The key, window and expiry stay django-ratelimit's, so its count and
this one are the same counter.

Over-admission bound, per client and window: at most ``P x (BATCH - 1)`` requests beyond the
limit, P being the number of web processes sharing the Redis, and only under limits of at
least ``MIN_BATCHED_LIMIT`` (ordinary limits, such as the default 120/m, are exact). Why: a
process admits at most ``BATCH - 1`` requests between two totals it reads, and once a total
it reads is within ``HEADROOM`` of the limit it admits nothing more without Redis; so only
its last batch of the window can land past the limit. Reaching the bound takes the other
processes adding more than ``HEADROOM`` requests within one such batch (at most
``MAX_AGE_SECONDS``) just as the count nears the limit; otherwise the overshoot is zero.
Requests admitted but not yet added reach Redis with that process's next request for the
client once their batch fills or ``MAX_AGE_SECONDS`` have passed; those of an ended window
never do (nothing reads that window's count any more).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Web processes assumed to share one Redis count (gunicorn workers x web hosts): the headroom
# below covers what each of them may have admitted and not yet added.
MAX_PROCESSES = 64
# Requests a process counts locally per Redis round trip. 32 makes the round trip's cost per
# request negligible (~0.5 ms / 32) while keeping the headroom below small beside the limits
# batching applies to.
BATCH = 32
HEADROOM = MAX_PROCESSES * BATCH
# Below this every request is added to Redis at once. Limits this high are ceilings against a
# runaway client rather than quotas, and even the worst overshoot with MAX_PROCESSES
# processes is under a tenth of them.
MIN_BATCHED_LIMIT = 10 * HEADROOM
# How old the last total read may be before a request must go to Redis: how long admitted
# requests may wait to be added, and how stale the picture of the other processes may get.
MAX_AGE_SECONDS = 0.5


@dataclass
class _Window:
    """One client's count in one window, as this process knows it."""

    ends: int  # epoch seconds: django-ratelimit's window value
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: int = 0  # admitted here, not yet added to Redis
    total: int = 0  # the last total Redis returned
    read_at: float = -math.inf  # when, on the counter's clock


class RateCounter:
    """Counts requests under django-ratelimit's Redis keys for one process (thread-safe)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._prune_at = 64

    def count(self, client, key: str, *, limit: int, window_ends: int, expiry: int) -> int:
        """Count one request under ``key``; return the total to decide it on (over ``limit``: refuse).

        ``client`` is a redis client; its errors propagate, as with one INCR per request.
        """
        if limit < MIN_BATCHED_LIMIT:
            return _add(client, key, 1, expiry)
        window = self._window(key, window_ends)
        # Held across the round trip so that a process has one batch in flight per client:
        # the over-admission bound counts one batch per process.
        with window.lock:
            now = self._clock()
            known = window.total + window.pending + 1
            fresh = now - window.read_at < MAX_AGE_SECONDS
            if fresh and window.pending + 1 < BATCH and known + HEADROOM <= limit:
                window.pending += 1
                return known
            # Should Redis fail, the pending count stays for the next request to add.
            total = _add(client, key, window.pending + 1, expiry)
            window.pending, window.total, window.read_at = 0, total, now
            return total

    def _window(self, key: str, ends: int) -> _Window:
        window = self._windows.get(key)
        if window is None:
            with self._lock:
                window = self._windows.get(key)
                if window is None:
                    self._forget_ended()
                    window = self._windows[key] = _Window(ends)
        return window

    def _forget_ended(self) -> None:
        """Drop ended windows with their pending counts: that window is over, so its count in
        Redis decides no request any more. Runs when the table doubles, so it costs O(1) a key."""
        if len(self._windows) < self._prune_at:
            return
        now = int(time.time())
        self._windows = {key: w for key, w in self._windows.items() if w.ends >= now}
        self._prune_at = max(64, 2 * len(self._windows))


def _add(client, key: str, amount: int, expiry: int) -> int:
    total = client.incrby(key, amount)
    if total == amount:
        # Only the window's first increment sets the expiry. Should this process die before it
        # does, the key outlives its window unused: the next window has a key of its own.
        client.expire(key, expiry)
    return total
