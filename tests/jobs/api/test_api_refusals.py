"""What a refused API or dashboard request answers and logs: a body naming a field twice is a
400; a scoped key asking for a job outside its scope learns nothing about it (the same 403 for a
job that exists and one that does not); every refusal is one log line with method, path,
status, who and why, and never a traceback or the key."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from jobs.models import AuditEntry, JobRun
from jobs.permissions.api_keys import api_key_create, api_key_revoke
from tests.jobs.conftest import API_KEY, PASSWORD

pytestmark = pytest.mark.django_db
RUN = "/api/jobs/run"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"job": "nightly", "job": "other"}', "job"),
        ('{"job": "nightly", "job": "nightly"}', "job"),
        ('{"job_id": 1, "job_id": 2}', "job_id"),
        ('{"job": "nightly", "x": {"a": 1, "a": 2}}', "a"),
    ],
)
def test_it_refuses_a_body_that_names_a_field_twice(api, make_job, raw, field):
    make_job("nightly")
    make_job("other")
    response = api.post(RUN, raw=raw)
    assert response.status_code == 400
    assert response.json() == {"error": f'the body names "{field}" twice; give each field once'}
    assert not JobRun.objects.exists()


def test_it_answers_a_scoped_key_the_same_for_a_job_out_of_scope_and_a_missing_one(api, make_job):
    allowed, hidden = make_job("generate-payouts"), make_job("secret-payroll-export")
    key, token = api_key_create(name="billing-cron", jobs=[allowed])
    asks = [{"job": "secret-payroll-export"}, {"job": "no-such-job"}, {"job_id": hidden.pk}, {"job_id": 987654321}]
    answers = [api.post(RUN, body, token=token) for body in asks]
    assert {response.status_code for response in answers} == {403}
    assert len({response.content for response in answers}) == 1
    assert "secret-payroll-export" not in answers[2].content.decode()
    assert answers[0].json() == {
        "error": "not allowed: this API key may trigger only the jobs of its scope; "
        "no job of its scope has that name or id"
    }
    assert not JobRun.objects.exists()
    # Each attempt is audited, under the job when it exists, under the key when it does not.
    refused = AuditEntry.objects.filter(api_key=key, action="run").exclude(refused="")
    assert sorted(refused.values_list("object_type", flat=True)) == ["apikey", "apikey", "job", "job"]
    # A caller who may trigger every job is told plainly that a job does not exist.
    assert api.post(RUN, {"job": "no-such-job"}).status_code == 404
    assert api.post(RUN, {"job_id": hidden.pk}).status_code == 202


def test_it_logs_each_refused_request_as_one_line_without_a_traceback(
    api, client, make_job, django_user_model, caplog, settings
):
    make_job("nightly")
    scoped, scoped_token = api_key_create(name="scoped-cron", jobs=[make_job("other")])
    revoked, revoked_token = api_key_create(name="old-cron")
    api_key_revoke(key=revoked)
    caplog.set_level(logging.INFO)
    refusals = [
        lambda: api.post(RUN, {"job": "nightly"}, token="chk_wrong"),  # 401
        lambda: api.post(RUN, {"job": "nightly"}, token=revoked_token),  # 401
        lambda: api.post(RUN, {"job": "nightly"}, token=scoped_token),  # 403
        lambda: api.post(RUN, raw='{"job": "a", "job": "b"}'),  # 400
        lambda: api.get("/api/runs/424242"),  # 404
    ]
    staff = django_user_model.objects.create_user("viewer", password=PASSWORD, is_staff=True)
    client.force_login(staff)  # staff without any permission: the dashboard raises PermissionDenied
    refusals += [
        lambda: client.get("/dashboard/"),  # 403
        lambda: client.post("/dashboard/jobs/nightly/run"),  # 403
        lambda: client.get("/admin/jobs/job/add/"),  # 403, Django admin's own PermissionDenied
    ]
    statuses = []
    for _ in range(5):
        statuses += [request().status_code for request in refusals]
    settings.JOBS_API_RATE_LIMIT = "1/m"
    statuses += [api.get("/api/jobs/status", token=scoped_token).status_code for _ in range(2)]  # 200, then 429

    lines = [r for r in caplog.records if r.name == "django.request"]
    assert sorted(set(statuses)) == [200, 400, 401, 403, 404, 429]
    assert len(lines) == len(statuses) - 1 == 41
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)
    assert all("\n" not in r.getMessage() for r in lines)
    messages = {r.getMessage() for r in lines}
    assert "refused POST /api/jobs/run -> 401 (a wrong key): missing or wrong bearer [redacted]" in messages
    assert "refused POST /api/jobs/run -> 401 (API key old-cron): API key refused: key revoked" in messages
    assert any(m.startswith("refused POST /api/jobs/run -> 403 (API key scoped-cron): not allowed") for m in messages)
    assert any(m.startswith("refused GET /dashboard/ -> 403 (viewer): ") for m in messages)
    assert any(m.startswith("refused POST /dashboard/jobs/nightly/run -> 403 (viewer): ") for m in messages)
    assert any(m.startswith("refused GET /admin/jobs/job/add/ -> 403 (viewer)") for m in messages)
    assert "refused GET /api/jobs/status -> 429 (API key scoped-cron): rate limit exceeded" in messages
    assert not any(secret in caplog.text for secret in (API_KEY, scoped_token, revoked_token, "chk_wrong"))


def test_it_writes_one_line_per_refusal_to_the_web_log(api, client, make_job, django_user_model, superuser, capfd):
    """What the console handler (the web log) writes, suspicious requests (a forged Host) and a
    staff session's API call without its CSRF token (refused by two checks) included."""
    make_job("nightly")
    staff = django_user_model.objects.create_user("viewer", password=PASSWORD, is_staff=True)
    client.force_login(staff)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(superuser)
    capfd.readouterr()
    for _ in range(3):
        assert client.get("/dashboard/").status_code == 403
        assert client.get("/dashboard/", HTTP_HOST="evil.example").status_code == 400
        assert api.post(RUN, {"job": "nightly"}, token="chk_wrong").status_code == 401
        assert browser.post(RUN, '{"job": "nightly"}', content_type="application/json").status_code == 403
    log = capfd.readouterr().err
    assert "Traceback" not in log and "chk_wrong" not in log
    lines = log.strip().splitlines()
    assert len(lines) == 12 and all(" refused " in line for line in lines)
    assert sum("refused POST /api/jobs/run -> 403 (boss): Forbidden (CSRF" in line for line in lines) == 3
    assert sum("refused GET /dashboard/ -> 400 (" in line and "Invalid HTTP_HOST header" in line for line in lines) == 3
    assert sum("refused GET /dashboard/ -> 403 (viewer): " in line for line in lines) == 3
