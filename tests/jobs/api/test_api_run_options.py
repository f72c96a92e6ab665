"""``options`` in ``POST /api/jobs/run``: checked by the command's own parser before anything is
recorded (400 otherwise), shown on the run; a paused job answers 409 as before, under its old word."""

from __future__ import annotations

import pytest

from jobs.models import AuditEntry, JobRun
from jobs.scheduling.pauses import job_pause

pytestmark = pytest.mark.django_db
RUN = "/api/jobs/run"


def test_it_queues_a_run_with_its_options_and_answers_them(api, make_job):
    make_job("nightly")
    options = {"as_of": "2026-03-01T06:00:00+00:00", "dry_run": True, "report": "march"}
    response = api.post(RUN, {"job": "nightly", "options": options})
    assert response.status_code == 202
    run = JobRun.objects.get()
    stored = {"as_of": "2026-03-01T06:00:00+00:00", "dry_run": True, "command_options": {"report": "march"}}
    assert run.options == stored and response.json()["options"] == stored
    detail = api.get(f"/api/runs/{run.pk}").json()
    assert detail["options"] == stored and detail["dry_run"] is True


@pytest.mark.parametrize(
    "options, words",
    [
        ({"bogus": 1}, "Unknown option 'bogus' for test_job"),
        ({"dry_run": "yes"}, '"dry_run" must be true or false'),
        ({"as_of": "tomorrow"}, "expected a date"),
        ({"help": True}, "Unknown option 'help'"),
        ("--as-of now", '"options" must be a JSON object'),
        ({"--dry-run": True}, "Give '--dry-run' as \"dry_run\""),
    ],
)
def test_it_answers_400_to_options_the_command_does_not_take_and_records_nothing(api, make_job, options, words):
    make_job("nightly")
    response = api.post(RUN, {"job": "nightly", "options": options})
    assert response.status_code == 400
    assert words in response.json()["error"] and response.json()["field"] == "options"
    assert not JobRun.objects.exists() and not AuditEntry.objects.exists()


def test_it_answers_409_to_a_paused_job_under_the_old_word_and_lists_it_as_before(api, make_job, superuser):
    job = make_job("nightly")
    job_pause(job=job, who=superuser, reason="migration")
    response = api.post(RUN, {"job": "nightly"})
    assert response.status_code == 409
    assert response.json()["reason"] == "disabled" and response.json()["paused"] is True
    assert not JobRun.objects.exists()
    listed = api.get("/api/jobs/status?status=paused").json()
    assert [row["status"] for row in listed["jobs"]] == ["disabled"]
    assert listed["jobs"][0]["paused"]["by"] == "boss" and listed["jobs"][0]["paused"]["reason"] == "migration"
    assert listed["totals"]["disabled"] == listed["totals"]["paused"] == 1
    assert api.get("/api/jobs/status?status=disabled").json()["jobs"][0]["name"] == "nightly"
