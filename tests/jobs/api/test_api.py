"""The HTTP trigger API: every status code, the rate limit, constant-time token comparison."""

from __future__ import annotations

import hmac
import json
import time
import uuid

import pytest
from django.core.cache import caches
from django.test import Client

from jobs.models import JobRun
from tests.jobs.conftest import API_KEY

pytestmark = pytest.mark.django_db
RUN = "/api/jobs/run"


def test_it_queues_a_run_by_name_and_answers_202_with_its_id(api, make_job):
    job = make_job("nightly")
    response = api.post(RUN, {"job": "nightly"})
    assert response.status_code == 202
    run = JobRun.objects.get()
    url = f"/api/runs/{run.pk}"
    assert response.json() == {"run_id": run.pk, "job": "nightly", "status": "queued", "url": url, "options": {}}
    assert response["Location"] == f"/api/runs/{run.pk}"
    assert run.job == job and run.triggered_by == JobRun.Trigger.API and run.triggered_by_user is None


def test_it_queues_a_run_by_job_id(api, make_job):
    job = make_job("nightly")
    assert api.post(RUN, {"job_id": job.pk}).status_code == 202


@pytest.mark.parametrize(
    "token", [None, "", "Basic abc", API_KEY[:-1] + "x", API_KEY + "x", API_KEY.upper(), "x" * len(API_KEY)]
)
def test_it_answers_401_to_a_missing_or_wrong_token(api, make_job, token, client):
    make_job("nightly")
    if token is None:
        response = api.post(RUN, {"job": "nightly"}, token=None)
    else:
        response = client.post(
            RUN, json.dumps({"job": "nightly"}), content_type="application/json", HTTP_AUTHORIZATION=token
        )
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not JobRun.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        "[]",
        '"nightly"',
        "{}",
        '{"job": 5}',
        '{"job_id": "five"}',
        '{"job_id": true}',
        '{"job": "a", "x": 1}',
    ],
)
def test_it_answers_400_to_malformed_json_or_fields(api, make_job, raw):
    make_job("nightly")
    response = api.post(RUN, raw=raw)
    assert response.status_code == 400
    assert "error" in response.json()


MALFORMED_BODIES = {
    "nested 8,000 deep": "[" * 8000 + "]" * 8000,
    "nested in an object": '{"job": ' + "[" * 8000 + "]" * 8000 + "}",
    "NUL in the name": '{"job": "night\\u0000ly"}',
    "NUL in a field name": '{"job\\u0000": "nightly"}',
    "lone surrogate": '{"job": "\\ud800"}',
    "lone surrogate field name": '{"\\ud800": 1}',
    "not UTF-8": b'{"job": "\xff\xfe"}',
    "unterminated": '{"job": "nightly"',
    "a 5,000-digit id": '{"job_id": 1' + "0" * 5000 + "}",
    "NaN id": '{"job_id": NaN}',
    "huge float id": '{"job_id": 1e400}',
    "empty": "",
}


@pytest.mark.parametrize("raw", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_it_answers_every_malformed_body_with_a_4xx_json_error_and_records_nothing(api, client, make_job, raw):
    make_job("nightly")
    client.raise_request_exception = False
    started = time.monotonic()
    response = api.post(RUN, raw=raw)
    assert 400 <= response.status_code < 500 and response["Content-Type"] == "application/json"
    assert response.json()["error"]
    assert time.monotonic() - started < 2
    assert not JobRun.objects.exists()


@pytest.mark.parametrize("header", ["Bearer \ud800", "Bearer \x00", "\ud800", "Bearer " + "\u00e9" * 5000])
def test_it_answers_401_to_an_undecodable_token(client, make_job, header):
    client.raise_request_exception = False
    response = client.get("/api/jobs/status", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and response.json()["error"]


def test_it_answers_404_to_an_unknown_job(api, make_job):
    make_job("nightly")
    assert api.post(RUN, {"job": "nope"}).status_code == 404
    assert api.post(RUN, {"job_id": 999999}).status_code == 404
    assert api.post(RUN, {"job_id": 2**70}).status_code == 404  # past any bigint id


def test_it_answers_409_to_a_disabled_job(api, make_job):
    make_job("nightly", enabled=False)
    response = api.post(RUN, {"job": "nightly"})
    assert response.status_code == 409
    assert response.json()["reason"] == "disabled"
    assert not JobRun.objects.exists()


def test_it_answers_409_naming_the_active_run_and_records_the_skip(api, make_job):
    make_job("nightly")
    first = api.post(RUN, {"job": "nightly"}).json()["run_id"]
    response = api.post(RUN, {"job": "nightly"})
    assert response.status_code == 409
    body = response.json()
    assert body["reason"] == "active" and body["active_run_id"] == first
    skipped = JobRun.objects.get(pk=body["skipped_run_id"])
    assert skipped.status == JobRun.Status.SKIPPED and skipped.blocked_by_id == first


def test_it_answers_413_to_a_body_over_16_kib(api, make_job):
    make_job("nightly")
    response = api.post(RUN, raw=json.dumps({"job": "nightly", "pad": "x" * 16 * 1024}))
    assert response.status_code == 413
    assert not JobRun.objects.exists()


def test_it_answers_429_with_retry_after_past_the_rate_limit(api, make_job, settings):
    make_job("nightly")
    settings.JOBS_API_RATE_LIMIT = "3/m"
    codes = [api.get("/api/jobs/status").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    limited = api.get("/api/jobs/status")
    assert 1 <= int(limited["Retry-After"]) <= 60
    # Wrong tokens count too (per address, not against the key holder), so guessing is slowed down.
    guesses = [api.post(RUN, {"job": "nightly"}, token="wrong").status_code for _ in range(4)]
    assert guesses == [401, 401, 401, 429]


@pytest.mark.redis
def test_it_counts_the_rate_limit_in_the_shared_redis_cache(api, make_job, settings):
    """Several web processes share one count through Redis (the distributed default)."""
    assert "redis" in settings.CACHES["default"]["BACKEND"].lower()
    settings.RATELIMIT_USE_CACHE = "default"
    settings.JOBS_API_RATE_LIMIT = f"2/{60 + uuid.uuid4().int % 500}s"  # a fresh counter key
    codes = [api.get("/api/jobs/status").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    caches["default"].close()


def test_it_refuses_every_request_while_the_key_is_unset_short_or_a_placeholder(api, make_job, settings):
    make_job("nightly")
    for key in ("", "short-key", "change-me-change-me-change-me-change-me"):
        settings.JOBS_SECRET_KEY = key
        assert api.post(RUN, {"job": "nightly"}, token=key).status_code == 503
        assert api.get("/api/jobs/status", token=key).status_code == 503
    assert not JobRun.objects.exists()


def test_it_lists_every_job_with_status_last_and_next_run_duration_and_error(api, make_job):
    make_job("alpha")
    beta = make_job("beta", enabled=False)
    JobRun.objects.create(job=beta, triggered_by="manual", status="failed", error="Boom: disk full\ntrace")
    beta.last_run_status = "failed"
    beta.save()
    body = api.get("/api/jobs/status").json()
    rows = {row["name"]: row for row in body["jobs"]}
    assert rows["alpha"]["status"] == "idle" and rows["alpha"]["next_run"]
    assert rows["beta"]["status"] == "disabled" and rows["beta"]["next_run"] is None
    assert rows["beta"]["last_error"] == "Boom: disk full"
    assert {"last_run", "last_duration_seconds", "schedule"} <= set(rows["alpha"])


def test_it_shows_one_run_and_404s_an_unknown_one(api, make_job):
    make_job("nightly")
    run_id = api.post(RUN, {"job": "nightly"}).json()["run_id"]
    body = api.get(f"/api/runs/{run_id}").json()
    assert body["id"] == run_id and body["status"] == "queued" and body["job"] == "nightly"
    assert api.get("/api/runs/999999").status_code == 404
    assert api.get(f"/api/runs/{run_id}", token="nope").status_code == 401


def test_it_accepts_a_staff_session_with_csrf_and_refuses_it_without(make_job, superuser):
    make_job("nightly")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(superuser)
    browser.get("/dashboard/")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    refused = browser.post(RUN, json.dumps({"job": "nightly"}), content_type="application/json")
    assert refused.status_code == 403
    accepted = browser.post(
        RUN, json.dumps({"job": "nightly"}), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert accepted.status_code == 202
    assert JobRun.objects.get().triggered_by_user == superuser
    assert browser.get("/api/jobs/status").status_code == 200


def test_it_refuses_a_non_staff_session(client, django_user_model, make_job):
    make_job("nightly")
    client.force_login(django_user_model.objects.create_user("tenant", password="pw-123456789"))
    assert client.get("/api/jobs/status").status_code == 401


def test_it_takes_one_code_path_for_right_wrong_and_missing_tokens(monkeypatch, db):
    """Every token, named key or bootstrap, right or wrong, goes through the same two
    hmac.compare_digest calls of two SHA-256 digests."""
    from jobs.permissions import api_keys

    _, named = api_keys.api_key_create(name="named")
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(api_keys.hmac, "compare_digest", spy)
    headers = ("", "Bearer", f"Bearer {API_KEY}", f"Bearer {API_KEY[:-1]}x", "Bearer " + "x" * len(API_KEY))
    for header in (*headers, f"Bearer {named}"):
        api_keys.api_key_authenticate(header)
    assert calls == [(64, 64)] * 12


def test_it_rejects_other_methods(api):
    assert api.get(RUN).status_code == 405
    assert api.post("/api/jobs/status", {}).status_code == 405
