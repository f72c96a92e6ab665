"""A planted webhook secret and the API key appear in no HTML page, JSON response, admin
form, log record or stored error, even after the receiver echoes them back."""

from __future__ import annotations

import logging

import pytest
from django.contrib.admin.models import LogEntry

from jobs.models import AuditEntry, JobRun, WebhookHandler
from jobs.running.runner import run_execute
from tests.jobs.conftest import API_KEY

pytestmark = pytest.mark.django_db
PLANTED = "PLANTED-w3bh00k-s3cret-d0-not-leak"


def test_it_never_shows_or_stores_a_planted_secret(staff_client, api, receiver, make_job, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.mode = "fail"  # a 500 whose body echoes every request header back
    created = staff_client.post(
        "/admin/jobs/webhookhandler/add/",
        {
            "name": "leaky",
            "url": receiver.url,
            "method": "POST",
            "auth": "bearer",
            "extra_headers": "{}",
            "timeout_seconds": 5,
            "new_secret": PLANTED,
        },
    )
    assert created.status_code == 302, created.content.decode()[:2000]
    handler = WebhookHandler.objects.get()
    job = make_job("call-leaky", command="", webhook_handler=handler)
    trigger = api.post("/api/jobs/run", {"job": job.name})
    run = run_execute(trigger.json()["run_id"])
    assert receiver.requests[0]["headers"]["Authorization"] == f"Bearer {PLANTED}"  # it really was sent
    assert run.status == JobRun.Status.FAILED and "Bearer [redacted]" in run.output

    pages = [
        "/admin/jobs/webhookhandler/",
        "/admin/jobs/webhookhandler/add/",
        f"/admin/jobs/webhookhandler/{handler.pk}/change/",
        f"/admin/jobs/webhookhandler/{handler.pk}/history/",
        f"/admin/jobs/job/{job.pk}/change/",
        f"/admin/jobs/jobrun/{run.pk}/change/",
        "/admin/jobs/jobrun/",
        "/admin/jobs/auditentry/",
        "/dashboard/",
        "/dashboard/data.json",
        f"/dashboard/jobs/{job.name}/",
        f"/dashboard/runs/{run.pk}/",
        "/dashboard/schedule/",
    ]
    seen = [trigger.content.decode()]
    for url in pages:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        seen.append(response.content.decode())
    api_reads = ("/api/jobs", f"/api/jobs/{job.pk}", "/api/webhook-handlers", f"/api/webhook-handlers/{handler.pk}")
    for url in ("/api/jobs/status", f"/api/runs/{run.pk}", *api_reads):
        seen.append(api.get(url).content.decode())
    seen.append(staff_client.get(f"/dashboard/runs/{run.pk}/", HTTP_ACCEPT="application/json").content.decode())

    run.refresh_from_db()
    stored = [run.error, run.output, str(run.summary), handler.secret]
    stored += [str(e.changes) for e in AuditEntry.objects.all()]
    stored += [e.change_message for e in LogEntry.objects.all()]
    logged = [record.getMessage() for record in caplog.records] + [caplog.text]

    for where, texts in (("response", seen), ("database", stored), ("log", logged)):
        for text in texts:
            assert PLANTED not in text, where
            assert API_KEY not in text, where
    assert handler.secret  # ciphertext is stored, and it is not shown anywhere either
    assert not any(handler.secret in text for text in seen)
