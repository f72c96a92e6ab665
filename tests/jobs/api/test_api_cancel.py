"""POST /api/runs/<id>/cancel: 200 for a queued run (it never starts), 202 for a running one (asked to
stop), 400 without a reason, 403 outside the caller's reach (audited), 404 a run the caller may not
see, 409 a run that has ended, 429 past a session's action limit."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from jobs.models import AuditEntry, JobRun
from jobs.permissions.api_keys import api_key_create
from jobs.running.runner import run_claim, run_execute, run_trigger

pytestmark = pytest.mark.django_db
Status = JobRun.Status


def queued(job) -> JobRun:
    return run_trigger(job=job, triggered_by=JobRun.Trigger.API, dispatch=False).run


def url(run) -> str:
    return f"/api/runs/{run.pk}/cancel"


def test_it_cancels_a_queued_run_with_200(api, make_job):
    run = queued(make_job())
    response = api.post(url(run), {"reason": "sent twice"})
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled" and response.json()["outcome"] == "cancelled"
    run.refresh_from_db()
    assert (run.status, run.cancelled_by, run.cancel_reason) == (
        Status.CANCELLED,
        "API key JOBS_SECRET_KEY",
        "sent twice",
    )


def test_it_asks_a_running_run_to_stop_with_202(api, make_job):
    run = run_claim(queued(make_job()).pk)
    response = api.post(url(run), {"reason": "too slow"})
    assert response.status_code == 202
    assert response.json()["status"] == "running" and response.json()["outcome"] == "requested"
    assert JobRun.objects.get(pk=run.pk).cancel_requested_at is not None
    # Asked already: nothing more to do.
    assert api.post(url(run), {"reason": "again"}).status_code == 409


def test_it_answers_409_to_a_run_that_has_ended(api, make_job):
    run = queued(make_job())
    run_execute(run.pk)
    response = api.post(url(run), {"reason": "late"})
    assert response.status_code == 409 and response.json()["run_status"] == "succeeded"


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": 5}, {"reason": "x" * 201}])
def test_it_answers_400_without_a_reason(api, make_job, body):
    run = queued(make_job())
    assert api.post(url(run), body).status_code == 400
    assert JobRun.objects.get(pk=run.pk).status == Status.QUEUED


def test_it_answers_404_to_a_run_outside_a_keys_scope_and_cancels_inside_it(api, make_job):
    mine, other = make_job("mine"), make_job("other")
    _, token = api_key_create(name="scheduler", jobs=[mine])
    assert api.post(url(queued(other)), {"reason": "x"}, token=token).status_code == 404
    assert api.post(url(queued(mine)), {"reason": "x"}, token=token).status_code == 200


def test_it_answers_403_to_a_session_without_the_permission_and_audits_it(make_job, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw-viewer-123456", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_jobrun", "run_job"]))
    run = queued(make_job())
    browser = Client()
    browser.force_login(user)
    response = browser.post(url(run), json.dumps({"reason": "x"}), content_type="application/json")
    assert response.status_code == 403 and "jobs.cancel_run" in response.json()["error"]
    assert AuditEntry.objects.get(action=AuditEntry.Action.CANCEL).refused == "missing permission jobs.cancel_run"
    assert JobRun.objects.get(pk=run.pk).status == Status.QUEUED


def test_it_counts_a_sessions_cancel_against_the_action_limit(make_job, superuser, settings):
    settings.JOBS_ACTION_RATE_LIMIT = "1/h"
    job = make_job()
    browser = Client()
    browser.force_login(superuser)
    first = queued(job)
    assert browser.post(url(first), json.dumps({"reason": "x"}), content_type="application/json").status_code == 200
    second = queued(job)
    refused = browser.post(url(second), json.dumps({"reason": "x"}), content_type="application/json")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert JobRun.objects.get(pk=second.pk).status == Status.QUEUED


def test_it_says_a_triggered_run_waits_behind_the_active_one_under_queue_one(api, make_job):
    from jobs.models import Job

    job = make_job(overlap=Job.Overlap.QUEUE_ONE)
    run_claim(queued(job).pk)
    waiting = api.post("/api/jobs/run", {"job": job.name})
    assert waiting.status_code == 202 and waiting.json()["behind_active_run"] is True
    assert api.post("/api/jobs/run", {"job": job.name}).status_code == 409
