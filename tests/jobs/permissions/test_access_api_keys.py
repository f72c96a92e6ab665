"""Named API keys: scope per job, revocation, expiry, rotation without a gap, shown once and
never again (pages, log records, dumpdata), made in one step by manage.py create_api_key."""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from jobs.models import ApiKey, AuditEntry, JobRun
from jobs.permissions.api_keys import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db
RUN = "/api/jobs/run"


def test_it_refuses_a_key_limited_to_one_job_on_another_and_audits_which_key(api, make_job):
    allowed, other = make_job("generate-payouts"), make_job("process-notifications")
    key, token = api_key_create(name="billing-cron", jobs=[allowed])
    assert api.post(RUN, {"job": "generate-payouts"}, token=token).status_code == 202
    refused = api.post(RUN, {"job": "process-notifications"}, token=token)
    assert refused.status_code == 403
    assert not JobRun.objects.filter(job=other).exists()
    entry = AuditEntry.objects.get(object_repr="process-notifications")
    assert entry.actor_label == f"API key billing-cron (#{key.pk})" and entry.api_key == key
    assert entry.refused and entry.address == "127.0.0.1"
    assert token not in str(list(AuditEntry.objects.values()))
    assert [row["name"] for row in api.get("/api/jobs/status", token=token).json()["jobs"]] == ["generate-payouts"]


def test_it_answers_401_to_a_revoked_or_expired_key(api, make_job):
    make_job("nightly")
    revoked, revoked_token = api_key_create(name="old")
    api_key_revoke(key=revoked)
    _, expired_token = api_key_create(name="temp", expires_at=timezone.now() - timedelta(seconds=1))
    for token in (revoked_token, expired_token):
        assert api.post(RUN, {"job": "nightly"}, token=token).status_code == 401
        assert api.get("/api/jobs/status", token=token).status_code == 401
        assert api.get("/metrics", token=token).status_code == 401
    assert not JobRun.objects.exists()
    assert set(AuditEntry.objects.values_list("refused", flat=True)) == {"key revoked", "key expired"}


def test_it_keeps_two_keys_valid_at_once_while_a_scheduler_rotates(api, make_job):
    make_job("nightly")
    old, old_token = api_key_create(name="cron-2025")
    _, new_token = api_key_create(name="cron-2026")
    assert api.get("/api/jobs/status", token=old_token).status_code == 200
    assert api.get("/api/jobs/status", token=new_token).status_code == 200
    api_key_revoke(key=old)
    assert api.get("/api/jobs/status", token=old_token).status_code == 401
    assert api.post(RUN, {"job": "nightly"}, token=new_token).status_code == 202
    assert api.get("/metrics", token=new_token).status_code == 200
    used = ApiKey.objects.get(name="cron-2026")
    assert used.last_used_at is not None and used.last_used_from == "127.0.0.1"


def test_it_still_accepts_the_bootstrap_key(api, make_job):
    make_job("nightly")
    assert api.post(RUN, {"job": "nightly"}).status_code == 202
    assert AuditEntry.objects.get().actor_label == "API key JOBS_SECRET_KEY"


def test_it_shows_the_key_once_on_the_admins_creation_screen_and_never_again(staff_client, make_job, caplog, capsys):
    make_job("nightly")
    caplog.set_level(logging.DEBUG)
    created = staff_client.post("/admin/jobs/apikey/add/", {"name": "k8s", "jobs": []})
    page = created.content.decode()
    key = ApiKey.objects.get(name="k8s")
    token = next(word for word in page.replace('"', " ").split() if word.startswith("chk_"))
    assert "no-store" in created["Cache-Control"]
    assert api_status(staff_client, token) == 200
    for url in ("/admin/jobs/apikey/", f"/admin/jobs/apikey/{key.pk}/change/", "/admin/jobs/auditentry/"):
        assert token not in staff_client.get(url).content.decode()
    dump = StringIO()
    call_command("dumpdata", "jobs", stdout=dump)
    assert token not in dump.getvalue()
    assert token not in caplog.text and token not in capsys.readouterr().err


def api_status(client, token):
    return client.get("/api/jobs/status", HTTP_AUTHORIZATION=f"Bearer {token}").status_code


def test_it_creates_a_key_in_one_step_and_prints_it_once_with_the_curl_line(client, make_job):
    make_job("generate-charges")
    out = StringIO()
    call_command("create_api_key", "billing-cron", "--job", "generate-charges", "--expires-in-days", "30", stdout=out)
    lines = out.getvalue().splitlines()
    token = next(line for line in lines if line.startswith("chk_"))
    assert any(line.startswith(f'curl -X POST -H "Authorization: Bearer {token}"') for line in lines)
    assert api_status(client, token) == 200
    key = ApiKey.objects.get(name="billing-cron")
    assert [job.name for job in key.jobs.all()] == ["generate-charges"] and key.expires_at is not None


def test_it_refuses_an_unknown_job_or_group_for_a_new_key():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no such job: nope"):
        call_command("create_api_key", "x", "--job", "nope", stdout=StringIO())
    assert not ApiKey.objects.exists()
