"""What the HTTP trigger skips on its successful path, and that the client cannot tell: the run's
URL from a template per script prefix, the rate key remembered per client and window, no model
instances built on PostgreSQL, the same log line as every other trigger."""

from __future__ import annotations

import logging
import time

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db.models.signals import post_init
from django.http import JsonResponse
from django.test import RequestFactory
from django.urls import reverse, set_script_prefix
from django_ratelimit.core import get_usage

from jobs.models import Job, JobRun
from jobs.runner import run_trigger, run_trigger_by_key
from jobs.views import guards
from jobs.views.api import run_url

pytestmark = pytest.mark.django_db
API = JobRun.Trigger.API


@pytest.fixture
def script_prefix():
    """Set the thread's script prefix; put back the default after the test."""
    yield set_script_prefix
    set_script_prefix("/")


def test_it_answers_with_the_bytes_jsonresponse_and_reverse_would_send(api, make_job):
    make_job("nightly")
    response = api.post("/api/jobs/run", {"job": "nightly"})
    run = JobRun.objects.get()
    url = reverse("jobs:api-run", args=[run.pk])
    expected = JsonResponse({"run_id": run.pk, "job": "nightly", "status": "queued", "url": url}, status=202)
    assert response.status_code == 202 and response["Location"] == url
    assert response.content == expected.content and response["Content-Type"] == expected["Content-Type"]


def test_it_builds_the_run_url_under_the_script_prefix(script_prefix):
    for prefix in ("/cron/", "/", "/other/mount/"):
        script_prefix(prefix)
        assert run_url(42) == reverse("jobs:api-run", args=[42]) == f"{prefix}api/runs/42"


def test_it_puts_the_script_prefix_in_the_location(api, make_job, script_prefix):
    for name in ("a", "b"):
        make_job(name)
    # The test client, unlike WSGIHandler, does not set the prefix from SCRIPT_NAME.
    script_prefix("/cron/")
    mounted = api.post("/api/jobs/run", {"job": "a"})
    script_prefix("/")
    plain = api.post("/api/jobs/run", {"job": "b"})
    assert mounted["Location"] == f"/cron/api/runs/{mounted.json()['run_id']}" == mounted.json()["url"]
    assert plain["Location"] == f"/api/runs/{plain.json()['run_id']}" == plain.json()["url"]


@pytest.mark.postgres
def test_it_builds_no_model_instance_to_queue_a_run(api, make_job):
    make_job("nightly")
    built = []

    def count(sender, **kwargs):
        built.append(sender)

    post_init.connect(count)
    try:
        response = api.post("/api/jobs/run", {"job": "nightly"})
    finally:
        post_init.disconnect(count)
    assert response.status_code == 202
    assert not [model for model in built if model in (Job, JobRun)]


def test_it_logs_a_queued_run_as_every_other_trigger_does(make_job, caplog):
    make_job("by-key")
    with caplog.at_level(logging.INFO, logger="jobs.runner"):
        by_key = run_trigger_by_key(name="by-key", triggered_by=API)
        direct = run_trigger(job=make_job("direct"), triggered_by=API).run
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("run queued")] == [
        f"run queued job=by-key run={by_key.run_id} trigger=api slot=None",
        f"run queued job=direct run={direct.pk} trigger=api slot=None",
    ]


# --- the remembered rate key -----------------------------------------------------------------

RATE = "5/60s"
REDIS_ALIAS = "rate-key-tests"


@pytest.fixture
def clock(monkeypatch):
    """time.time() for both this project and django-ratelimit, moved by the test."""
    now = [1_700_000_000.25]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


@pytest.fixture
def redis_cache():
    # Builds keys only: never connects.
    return RedisCache("redis://127.0.0.1:1/0", {})


def library_key(request) -> str:
    """The key django-ratelimit itself counts this request under (in the surfaces' memory cache,
    which stores entries under the same full key a Redis cache would)."""
    cache = caches["surfaces-tests"]
    cache.clear()
    get_usage(request, group=guards.RATE_GROUP, key="ip", rate=RATE, increment=True)
    (key,) = cache._cache.keys()
    return key


def remembered_key(request, cache) -> guards._RateKey:
    return guards._rate_key(request, REDIS_ALIAS, cache, RATE)


@pytest.mark.parametrize(
    "addresses",
    [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db9::1")],
    ids=["ipv4", "ipv6"],
)
def test_it_remembers_django_ratelimits_key_per_address_until_the_window_ends(clock, redis_cache, addresses):
    requests = [RequestFactory().post("/api/jobs/run", REMOTE_ADDR=address) for address in addresses]
    first = [remembered_key(request, redis_cache) for request in requests]
    assert [rate_key.key for rate_key in first] == [library_key(request) for request in requests]
    assert first[0].key != first[1].key and (first[0].limit, first[0].period) == (5, 60)
    # Until the window ends the same key is used without being built again...
    clock[0] = first[0].window + 0.99
    assert remembered_key(requests[0], redis_cache) is first[0]
    # ...and from the next second on it is the next window's, still the library's.
    clock[0] = first[0].window + 1
    after = remembered_key(requests[0], redis_cache)
    assert after.window == first[0].window + 60 and after.key == library_key(requests[0]) != first[0].key
    assert remembered_key(requests[1], redis_cache).key == library_key(requests[1])


def test_it_shares_one_key_between_addresses_the_library_counts_as_one(clock, redis_cache, settings):
    settings.RATELIMIT_IPV6_MASK = 64
    same_network = [RequestFactory().post("/", REMOTE_ADDR=f"2001:db8::{n}") for n in (1, 2)]
    keys = {remembered_key(request, redis_cache).key for request in same_network}
    assert keys == {library_key(same_network[0])} == {library_key(same_network[1])}


def test_it_builds_the_key_again_when_a_ratelimit_setting_changes(clock, redis_cache, settings):
    request = RequestFactory().post("/", REMOTE_ADDR="10.0.0.1")
    before = remembered_key(request, redis_cache)
    settings.RATELIMIT_CACHE_PREFIX = "other:"
    after = remembered_key(request, redis_cache)
    assert after.key != before.key and after.key == library_key(request)


def test_it_follows_a_header_address_and_asks_the_library_for_a_function_one(clock, redis_cache, settings):
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"
    proxied = RequestFactory().post("/", REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="10.0.0.9")
    assert remembered_key(proxied, redis_cache).key == library_key(proxied)
    settings.RATELIMIT_IP_META_KEY = lambda request: request.META["HTTP_X_REAL_IP"]
    assert remembered_key(proxied, redis_cache).key == library_key(proxied)
    assert not guards._rate_keys  # nothing remembered for an address a function supplies
