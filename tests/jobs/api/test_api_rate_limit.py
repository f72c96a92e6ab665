"""The API's rate limit counted in real Redis (django-ratelimit on Django's Redis cache): exact
across threads and processes, a 429 with Retry-After past the limit, and the shared count used again when Redis answers
(tests/jobs/api/test_web_rate_limit.py: the per-process limit while it does not)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.test import RequestFactory

from jobs.permissions import guards
from tests.process_group import process_env

pytestmark = pytest.mark.redis


def fresh_address() -> str:
    """A client address no earlier run counted in this window: runs less than a window apart would
    otherwise share a counter key."""
    return ".".join(["10", *(str(byte) for byte in uuid.uuid4().bytes[:3])])


@pytest.fixture
def redis_rate(settings):
    settings.RATELIMIT_USE_CACHE = "default"
    assert "redis" in settings.CACHES["default"]["BACKEND"].lower()
    settings.JOBS_API_RATE_LIMIT = "120/m"
    return settings


def admitted_from_threads(address: str, *, requests: int, threads: int) -> int:
    """How many of ``requests`` (spread over ``threads`` threads) the guard let through."""
    admitted = []

    def send(n: int) -> None:
        for _ in range(n):
            request = RequestFactory().post("/api/jobs/run", REMOTE_ADDR=address)
            admitted.append(guards.rate_limited(request) is None)

    workers = [threading.Thread(target=send, args=(requests // threads,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(admitted)


OTHER_PROCESS = """
import sys
import django
django.setup()
from django.conf import settings
settings.RATELIMIT_USE_CACHE = "default"
settings.JOBS_API_RATE_LIMIT = "120/m"
from tests.jobs.api.test_api_rate_limit import admitted_from_threads
print("ready", flush=True)
sys.stdin.readline()
print(admitted_from_threads(sys.argv[1], requests=100, threads=4))
"""


def test_it_admits_exactly_120_of_200_requests_from_threads_in_two_processes(redis_rate):
    address = fresh_address()
    other = subprocess.Popen(
        [sys.executable, "-c", OTHER_PROCESS, address],
        cwd=django_settings.BASE_DIR,
        env=process_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout.readline().strip() == "ready"
        other.stdin.write("go\n")
        other.stdin.flush()
        here = admitted_from_threads(address, requests=100, threads=4)
        out, _ = other.communicate(timeout=60)
    finally:
        other.kill()
    assert here + int(out) == 120


def test_it_answers_the_121st_request_of_a_window_with_429_and_retry_after(redis_rate):
    request = RequestFactory().post("/api/jobs/run", REMOTE_ADDR=fresh_address())
    assert [guards.rate_limited(request) for _ in range(120)] == [None] * 120
    refused = guards.rate_limited(request)
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    assert json.loads(refused.content) == {
        "error": "rate limit exceeded",
        "retry_after_seconds": int(refused["Retry-After"]),
    }


def test_it_counts_each_address_on_its_own(redis_rate):
    first, second = fresh_address(), fresh_address()
    for _ in range(120):
        guards.rate_limited(RequestFactory().post("/api/jobs/run", REMOTE_ADDR=first))
    assert guards.rate_limited(RequestFactory().post("/api/jobs/run", REMOTE_ADDR=first)).status_code == 429
    assert guards.rate_limited(RequestFactory().post("/api/jobs/run", REMOTE_ADDR=second)) is None


def test_it_shares_the_count_again_once_redis_answers(redis_rate):
    """The shared Redis is the one counted in whenever it is up (the "ratelimit" cache of settings)."""
    redis_rate.RATELIMIT_USE_CACHE = "ratelimit"
    address = fresh_address()
    for _ in range(120):
        guards.rate_limited(RequestFactory().post("/api/jobs/run", REMOTE_ADDR=address))
    # Another process's memory is empty; only the shared count can refuse this one.
    caches["ratelimit"].clear()
    assert guards.rate_limited(RequestFactory().post("/api/jobs/run", REMOTE_ADDR=address)).status_code == 429
