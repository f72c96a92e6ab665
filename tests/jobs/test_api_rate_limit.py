"""The API's rate count in real Redis: exact under ordinary limits (threads and two processes),
batched far from a high limit, exact again near it, window rollover, Redis down."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid

import pytest
import redis
from django.conf import settings as django_settings
from django.test import RequestFactory

from jobs.views import guards
from jobs.views.rate_counter import BATCH, HEADROOM, MAX_AGE_SECONDS, MIN_BATCHED_LIMIT, RateCounter
from tests.conftest import redis_url
from tests.jobs.test_api_trigger_path import fresh_address
from tests.process_group import free_port, process_env

pytestmark = pytest.mark.redis
HIGH = 10**8
EXPIRY = 65


class Clock:
    """A monotonic clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorded:
    """A redis client that records the commands the counter sends through it."""

    def __init__(self, client: redis.Redis) -> None:
        self.client, self.sent = client, []

    def incrby(self, key, amount):
        self.sent.append(("INCRBY", amount))
        return self.client.incrby(key, amount)

    def expire(self, key, seconds):
        self.sent.append(("EXPIRE", seconds))
        return self.client.expire(key, seconds)


@pytest.fixture
def server():
    """A client of the test Redis; every key a test makes (``server.key()``) is deleted after."""
    client = redis.Redis.from_url(redis_url())
    made = []

    def key() -> str:
        made.append(f"cronhouse-test:rate:{uuid.uuid4().hex}")
        return made[-1]

    client.key = key
    yield client
    if made:
        client.delete(*made)
    client.close()


def ends() -> int:
    return int(time.time()) + 60


def hammer(url: str, key: str, *, limit: int, requests: int, threads: int, window_ends: int, counter=None) -> list[int]:
    """Count ``requests`` spread over ``threads`` threads of one process, each with its own client
    (as the guard has); return the totals the requests were decided on."""
    counter, totals = counter or RateCounter(), []

    def send(n: int) -> None:
        client = redis.Redis.from_url(url)
        for _ in range(n):
            totals.append(counter.count(client, key, limit=limit, window_ends=window_ends, expiry=EXPIRY))

    workers = [threading.Thread(target=send, args=(requests // threads,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return totals


OTHER_PROCESS = """
import json, sys
import django
django.setup()
from tests.jobs.test_api_rate_limit import hammer
url, key, window_ends = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
print(json.dumps(hammer(url, key, limit=120, requests=100, threads=4, window_ends=window_ends)))
"""


def test_it_admits_exactly_120_of_200_requests_from_threads_in_two_processes(server):
    key, window_ends = server.key(), ends()
    other = subprocess.Popen(
        [sys.executable, "-c", OTHER_PROCESS, redis_url(), key, str(window_ends)],
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
        here = hammer(redis_url(), key, limit=120, requests=100, threads=4, window_ends=window_ends)
        out, _ = other.communicate(timeout=60)
    finally:
        other.kill()
    there = json.loads(out)
    # Every request had a total of its own from Redis: no batching under an ordinary limit.
    assert sorted(here + there) == list(range(1, 201))
    assert sum(total <= 120 for total in here + there) == 120
    assert int(server.get(key)) == 200 and 0 < server.ttl(key) <= EXPIRY


def test_it_counts_every_request_in_redis_under_a_limit_below_the_batching_floor(server):
    key, limit = server.key(), MIN_BATCHED_LIMIT - 1
    counter, client = RateCounter(clock=Clock()), Recorded(server)
    for _ in range(BATCH):
        counter.count(client, key, limit=limit, window_ends=ends(), expiry=EXPIRY)
    assert [command for command in client.sent if command[0] == "INCRBY"] == [("INCRBY", 1)] * BATCH


def test_it_admits_far_from_a_high_limit_with_one_round_trip_per_batch(server):
    key, window_ends = server.key(), ends()
    counter, client = RateCounter(clock=Clock()), Recorded(server)
    totals = [
        counter.count(client, key, limit=HIGH, window_ends=window_ends, expiry=EXPIRY) for _ in range(1 + 3 * BATCH)
    ]
    assert totals == list(range(1, 2 + 3 * BATCH))
    # The window's first request goes to Redis (and sets the expiry); then each batch's last.
    assert client.sent == [("INCRBY", 1), ("EXPIRE", EXPIRY)] + [("INCRBY", BATCH)] * 3
    assert int(server.get(key)) == 1 + 3 * BATCH and 0 < server.ttl(key) <= EXPIRY


def test_it_loses_no_request_counted_locally_by_several_threads(server):
    key, window_ends, clock = server.key(), ends(), Clock()
    counter, requests = RateCounter(clock=clock), 40 * BATCH
    totals = hammer(
        redis_url(), key, limit=HIGH, requests=requests, threads=4, window_ends=window_ends, counter=counter
    )
    assert sorted(totals) == list(range(1, requests + 1))
    assert int(server.get(key)) == requests - (BATCH - 1)  # the last batch is still local
    clock.now += MAX_AGE_SECONDS
    assert counter.count(server, key, limit=HIGH, window_ends=window_ends, expiry=EXPIRY) == requests + 1
    assert int(server.get(key)) == requests + 1


def test_it_adds_the_local_count_once_the_last_total_is_older_than_max_age(server):
    key, window_ends, clock = server.key(), ends(), Clock()
    counter, client = RateCounter(clock=clock), Recorded(server)
    for _ in range(6):
        counter.count(client, key, limit=HIGH, window_ends=window_ends, expiry=EXPIRY)
    assert int(server.get(key)) == 1  # five admitted here, not yet added
    clock.now += MAX_AGE_SECONDS
    assert counter.count(client, key, limit=HIGH, window_ends=window_ends, expiry=EXPIRY) == 7
    assert client.sent[-1] == ("INCRBY", 6) and int(server.get(key)) == 7


def test_it_counts_every_request_in_redis_near_a_high_limit_and_refuses_past_it(server):
    """Other processes have counted up to just under the headroom: from there on this one is exact."""
    key, window_ends, limit = server.key(), ends(), MIN_BATCHED_LIMIT
    server.set(key, limit - HEADROOM - 10, ex=EXPIRY)
    counter, client = RateCounter(clock=Clock()), Recorded(server)
    totals = [
        counter.count(client, key, limit=limit, window_ends=window_ends, expiry=EXPIRY) for _ in range(HEADROOM + 11)
    ]
    assert [total > limit for total in totals] == [False] * (HEADROOM + 10) + [True]
    assert int(server.get(key)) == limit + 1
    # Nine were admitted here before a total within the headroom came back; then one by one.
    assert client.sent == [("INCRBY", 1), ("INCRBY", 10)] + [("INCRBY", 1)] * HEADROOM


def test_it_overshoots_a_high_limit_by_at_most_one_batch_per_process(server):
    """The worst case: two processes read a total far from the limit, then others pass it at once."""
    key, window_ends, limit = server.key(), ends(), MIN_BATCHED_LIMIT
    processes = [RateCounter(clock=Clock()) for _ in range(2)]
    for counter in processes:
        counter.count(server, key, limit=limit, window_ends=window_ends, expiry=EXPIRY)
    server.incrby(key, limit)
    admitted = 0
    for counter in processes:
        totals = [
            counter.count(server, key, limit=limit, window_ends=window_ends, expiry=EXPIRY) for _ in range(3 * BATCH)
        ]
        admitted += sum(total <= limit for total in totals)
    assert admitted == 2 * (BATCH - 1)


def test_it_drops_the_local_count_of_an_ended_window(server):
    old_key, new_key, clock = server.key(), server.key(), Clock()
    counter, client = RateCounter(clock=clock), Recorded(server)
    old_window_ends = int(time.time()) - 1
    for _ in range(5):
        counter.count(client, old_key, limit=HIGH, window_ends=old_window_ends, expiry=EXPIRY)
    # The next window's key starts from its own first request, without the old window's four.
    assert counter.count(client, new_key, limit=HIGH, window_ends=ends(), expiry=EXPIRY) == 1
    assert client.sent[-2:] == [("INCRBY", 1), ("EXPIRE", EXPIRY)]
    for _ in range(200):  # many clients' windows later, the ended one is forgotten
        counter.count(client, server.key(), limit=HIGH, window_ends=old_window_ends, expiry=EXPIRY)
    client.sent.clear()
    counter.count(client, old_key, limit=HIGH, window_ends=old_window_ends, expiry=EXPIRY)
    assert client.sent == [("INCRBY", 1)] and int(server.get(old_key)) == 2


def test_it_raises_while_redis_is_down_and_adds_the_local_count_once_it_is_back(server):
    key, window_ends, clock = server.key(), ends(), Clock()
    down = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    counter = RateCounter(clock=clock)
    with pytest.raises(redis.ConnectionError):
        counter.count(down, key, limit=120, window_ends=window_ends, expiry=EXPIRY)
    for _ in range(4):
        counter.count(server, key, limit=HIGH, window_ends=window_ends, expiry=EXPIRY)
    clock.now += MAX_AGE_SECONDS
    with pytest.raises(redis.ConnectionError):
        counter.count(down, key, limit=HIGH, window_ends=window_ends, expiry=EXPIRY)
    assert counter.count(server, key, limit=HIGH, window_ends=window_ends, expiry=EXPIRY) == 5
    assert int(server.get(key)) == 5


# --- through the guard ----------------------------------------------------------------------


@pytest.fixture
def redis_rate(settings):
    settings.RATELIMIT_USE_CACHE = "default"
    assert "redis" in settings.CACHES["default"]["BACKEND"].lower()
    return settings


def test_it_answers_the_121st_request_of_a_window_with_429_and_retry_after(redis_rate):
    redis_rate.JOBS_API_RATE_LIMIT = "120/m"
    request = RequestFactory().post("/api/jobs/run", REMOTE_ADDR=fresh_address())
    assert [guards.rate_limited(request) for _ in range(120)] == [None] * 120
    refused = guards.rate_limited(request)
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    assert json.loads(refused.content) == {
        "error": "rate limit exceeded",
        "retry_after_seconds": int(refused["Retry-After"]),
    }


def test_it_lets_the_error_through_when_redis_is_down(redis_rate):
    """As with one INCR per request: the API answers 500 rather than go on unlimited."""
    redis_rate.CACHES = {
        **redis_rate.CACHES,
        "down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        },
    }
    redis_rate.RATELIMIT_USE_CACHE = "down"
    request = RequestFactory().post("/api/jobs/run", REMOTE_ADDR=fresh_address())
    with pytest.raises(redis.ConnectionError):
        guards.rate_limited(request)
