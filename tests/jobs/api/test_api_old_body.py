"""The old system's trigger body, {"job_id": "<id or uuid>", "triggered_by": "..."}: a numeric id
(as a number or a string) names our job, a UUID answers like an unknown job unless a job bears it as
its name, and triggered_by lands in the audit entry only."""

from __future__ import annotations

import uuid

import pytest

from jobs.models import AuditEntry, JobRun
from jobs.permissions.api_keys import api_key_create

pytestmark = pytest.mark.django_db
RUN = "/api/jobs/run"


def test_it_triggers_the_job_named_by_a_numeric_string_id_and_audits_triggered_by(api, make_job):
    job = make_job("nightly")
    response = api.post(RUN, {"job_id": str(job.pk), "triggered_by": "legacy-cron@host-7"})
    assert response.status_code == 202
    run = JobRun.objects.get()
    assert response.json()["run_id"] == run.pk and run.job == job
    assert run.triggered_by == "api"
    entry = AuditEntry.objects.get(action="run", object_id=str(job.pk))
    assert entry.changes["triggered_by"] == [None, "legacy-cron@host-7"]
    assert entry.changes["run"] == [None, run.pk]


def test_it_answers_a_uuid_like_an_unknown_job(api, make_job):
    make_job("nightly")
    old_id = str(uuid.uuid4())
    response = api.post(RUN, {"job_id": old_id, "triggered_by": "legacy-cron"})
    assert response.status_code == 404 and response.json() == {"error": "no such job"}
    key, token = api_key_create(name="scoped-cron", jobs=[make_job("other")])
    scoped = api.post(RUN, {"job_id": old_id, "triggered_by": "legacy-cron"}, token=token)
    assert scoped.status_code == 403
    assert scoped.content == api.post(RUN, {"job": "no-such-job"}, token=token).content
    assert not JobRun.objects.exists()
    entry = AuditEntry.objects.filter(api_key=key).exclude(refused="").order_by("id").first()
    assert entry.changes == {"triggered_by": [None, "legacy-cron"]}


def test_it_triggers_a_job_whose_name_is_the_old_uuid(api, make_job):
    old_id = str(uuid.uuid4())
    job = make_job(old_id)
    assert api.post(RUN, {"job_id": old_id}).status_code == 202
    assert JobRun.objects.get().job == job


@pytest.mark.parametrize(
    "body",
    [
        {"job_id": "nightly"},
        {"job_id": "5x"},
        {"job_id": "1" + "0" * 5000},
        {"job_id": "5", "triggered_by": 7},
        {"job_id": "5", "triggered_by": "x" * 201},
        {"job_id": "5", "triggered_by": "cron\u0000"},
        {"triggered_by": "legacy-cron"},
    ],
)
def test_it_answers_400_to_an_old_body_it_cannot_read_and_records_nothing(api, make_job, body):
    make_job("nightly")
    response = api.post(RUN, body)
    assert response.status_code == 400 and "error" in response.json()
    assert not JobRun.objects.exists() and not AuditEntry.objects.exists()
