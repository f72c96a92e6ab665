"""Tasks that exist only for the benchmarks; the worker imports them with ``-I bench.bench_tasks``.

``bench.noop`` is the bare-Celery baseline: it does nothing but count itself in Redis, so the
benchmark can tell when every message has been executed. ``bench.recorded_noop`` is the same
with its result stored by django-celery-results. It takes an optional job name so the
HTTP baseline (bench/api_trigger_urls.py) can send the message a Celery user would send.
"""

from __future__ import annotations

import os

import redis

from config.celery import app

DONE_KEY = "cronhouse:bench:noop:done"
_client: redis.Redis | None = None


def counter() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    return _client


@app.task(name="bench.noop", ignore_result=True)
def noop(job: str | None = None) -> None:
    counter().incr(DONE_KEY)


@app.task(name="bench.recorded_noop", ignore_result=False)
def recorded_noop() -> None:
    """The Celery + django-celery-results baseline: does nothing; its worker
    (bench/results_settings.py) stores a result row for it, which is how the benchmark counts it."""
