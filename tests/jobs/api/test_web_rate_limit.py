"""Who the API's rate limit counts (core/ratelimit.py): the key holder per key, a staff user per
user, anyone else per address; forwarded headers only from trusted proxies; a cache outage
loosens the limit to a per-process one instead of failing the request."""

from __future__ import annotations

import json

import pytest
from django.core.cache import caches
from django.test import Client

from jobs.models import JobRun
from tests.process_group import free_port

pytestmark = pytest.mark.django_db
RUN = "/api/jobs/run"
STATUS = "/api/jobs/status"
OTHER_KEY = "rotated-api-key-5c2e8a0f4b7d1e9c3a6f"


@pytest.fixture
def limit(settings):
    # Per hour: a count that crossed a window boundary mid-test would start again.
    settings.JOBS_API_RATE_LIMIT = "5/h"
    return settings


def test_it_lets_the_key_holder_trigger_after_120_anonymous_requests_from_its_address(api, client, make_job, settings):
    settings.JOBS_API_RATE_LIMIT = "120/h"
    make_job("nightly")
    anonymous = [client.get(STATUS).status_code for _ in range(60)]
    anonymous += [api.post(RUN, {"job": "nightly"}, token="guess").status_code for _ in range(60)]
    assert set(anonymous) == {401}
    assert client.get(STATUS).status_code == 429  # the address itself is limited ...
    response = api.post(RUN, {"job": "nightly"})  # ... the key holder on it is not
    assert response.status_code == 202
    assert JobRun.objects.get().pk == response.json()["run_id"]


def test_it_limits_a_key_holder_past_its_own_limit_and_not_another_key(api, make_job, limit):
    assert [api.get(STATUS).status_code for _ in range(6)] == [200] * 5 + [429]
    limit.JOBS_SECRET_KEY = OTHER_KEY  # the operator rotates the key: its holder has a fresh allowance
    assert api.get(STATUS, token=OTHER_KEY).status_code == 200
    assert api.get(STATUS, token=None).status_code == 401  # and anonymous callers their own


def test_it_counts_each_staff_user_on_their_own(api, django_user_model, limit):
    first, second = Client(), Client()
    first.force_login(django_user_model.objects.create_user("ann", is_staff=True))
    second.force_login(django_user_model.objects.create_user("bob", is_staff=True))
    assert [first.get(STATUS).status_code for _ in range(6)] == [200] * 5 + [429]
    assert second.get(STATUS).status_code == 200
    assert api.get(STATUS).status_code == 200  # the key holder on the same address too


ROTATING = [
    {"HTTP_X_FORWARDED_FOR": "10.0.0.{n}"},
    {"HTTP_X_REAL_IP": "10.0.0.{n}"},
    {"HTTP_X_FORWARDED_FOR": "{n}.1.2.3, 10.9.9.{n}"},
]


@pytest.mark.parametrize("headers", ROTATING)
def test_it_counts_the_real_address_when_a_client_rotates_a_forwarded_header(client, limit, headers):
    limit.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"  # the old setting is not believed either
    codes = [client.get(STATUS, **{k: v.format(n=n) for k, v in headers.items()}).status_code for n in range(6)]
    assert codes == [401] * 5 + [429]


MALFORMED = ["", "not-an-address", ",,,", "999.1.1.1", "10.0.0.1:8080", "1.2.3.4 5.6.7.8", "\u00e9", "1.2.3.4/24"]


@pytest.mark.parametrize("hops", [0, 1, 3])
def test_it_never_fails_on_a_missing_or_malformed_forwarded_header(client, limit, hops):
    limit.TRUSTED_PROXY_HOPS = hops
    codes = [client.get(STATUS, HTTP_X_FORWARDED_FOR=value).status_code for value in MALFORMED]
    codes.append(client.get(STATUS).status_code)  # no header at all
    # Each falls back to REMOTE_ADDR: one address, limited after 5.
    assert codes == [401] * 5 + [429] * (len(MALFORMED) - 4)


def test_it_counts_the_address_the_trusted_proxy_saw(client, limit):
    limit.TRUSTED_PROXY_HOPS = 1
    spoofed = [client.get(STATUS, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}, 203.0.113.7").status_code for n in range(6)]
    assert spoofed == [401] * 5 + [429]
    assert client.get(STATUS, HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 401  # another client


def test_it_counts_an_ipv6_client_per_64_block(client, limit):
    codes = [client.get(STATUS, REMOTE_ADDR=f"2001:db8:1:2::{n:x}").status_code for n in range(1, 7)]
    assert codes == [401] * 5 + [429]
    assert client.get(STATUS, REMOTE_ADDR="2001:db8:1:3::1").status_code == 401


@pytest.fixture
def dead_cache(settings):
    """The rate-limit counters' Redis is unreachable (a closed port)."""
    settings.CACHES = {
        **settings.CACHES,
        "dead-redis": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        },
        "dead-limit": {"BACKEND": "core.ratelimit.FallbackCache", "LOCATION": "dead-redis"},
    }
    settings.RATELIMIT_USE_CACHE = "dead-limit"
    caches["dead-limit"].clear()
    yield settings
    caches["dead-limit"].clear()


def test_it_answers_and_still_limits_while_the_cache_is_down(api, make_job, dead_cache):
    make_job("nightly")
    dead_cache.JOBS_API_RATE_LIMIT = "3/h"
    response = api.post(RUN, {"job": "nightly"})
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert JobRun.objects.filter(status=JobRun.Status.QUEUED).count() == 1
    assert [api.get(STATUS).status_code for _ in range(3)] == [200, 200, 429]


def test_it_answers_a_malformed_forwarded_header_with_json(client, limit):
    limit.TRUSTED_PROXY_HOPS = 1
    for value in ("::::", "fe80::1%eth0", "a" * 10_000):
        response = client.post(
            RUN, json.dumps({"job": "x"}), content_type="application/json", HTTP_X_FORWARDED_FOR=value
        )
        assert response.status_code == 401 and "error" in response.json()
