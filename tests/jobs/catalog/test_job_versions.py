"""A job's history: every change to its schedule, handler, config or routing is a version (who,
when, from where, what changed), whichever way it came in; a save that changes nothing versioned
records nothing."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule

from jobs.models import Job, JobVersion
from jobs.models.versions import changes_by
from notifications.models import AlertChannel, AlertRoute

pytestmark = pytest.mark.django_db


def versions(job: Job) -> list[JobVersion]:
    return list(JobVersion.objects.filter(job=job).order_by("number"))


def test_it_records_a_first_version_and_one_per_change(make_job):
    job = make_job("nightly-report", cron_expression="0 3 * * *", config={})

    job.cron_expression = "30 4 * * *"
    job.save()
    job.description = "the report"
    job.timeout_seconds = 600
    job.save()
    job.save()  # nothing changed: nothing recorded
    Job.objects.get(pk=job.pk).save()

    first, second, third = versions(job)
    assert first.snapshot["cron_expression"] == "0 3 * * *" and first.changes == {}
    assert second.changes == {"cron_expression": ["0 3 * * *", "30 4 * * *"]}
    assert third.changes == {"description": ["", "the report"], "timeout_seconds": [3600, 600]}
    assert (third.actor_label, third.number) == ("system", 3)


def test_it_does_not_version_pausing_or_what_the_runner_keeps(make_job):
    job = make_job("nightly-report")
    job.enabled = False
    job.consecutive_failures = 4
    job.save()

    assert len(versions(job)) == 1


def test_it_names_who_changed_the_job_and_from_where(make_job, django_user_model):
    job = make_job("nightly-report")
    alice = django_user_model.objects.create_user("alice")

    with changes_by(alice, "admin"):
        job.config = {"limit": 5}
        job.save()

    latest = versions(job)[-1]
    assert (latest.actor, latest.actor_label, latest.source) == (alice, "alice", "admin")


def test_it_versions_a_schedule_edited_on_the_beat_rows(make_job):
    job = make_job("nightly-report", cron_expression="0 3 * * *")
    crontab = CrontabSchedule.objects.get(periodictask__job=job)

    crontab.hour = "5"
    crontab.save()

    latest = versions(job)[-1]
    assert latest.changes == {"cron_expression": ["0 3 * * *", "0 5 * * *"]}


def test_it_versions_the_jobs_alert_channels(make_job, django_capture_on_commit_callbacks):
    job = make_job("nightly-report")
    channel = AlertChannel.objects.create(name="ops", kind=AlertChannel.Kind.EMAIL, recipients="ops@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        route = AlertRoute.objects.create(channel=channel, job=job)
    with django_capture_on_commit_callbacks(execute=True):
        route.delete()

    first, routed, unrouted = versions(job)
    assert first.snapshot["alert_channels"] == []
    assert routed.changes == {"alert_channels": [[], ["ops"]]}
    assert unrouted.changes == {"alert_channels": [["ops"], []]}


def test_it_versions_jobs_created_by_import(tmp_path):
    definitions = [{"name": f"imported-{n}", "command": "test_job", "cron_expression": "0 1 * * *"} for n in range(3)]
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(definitions))

    call_command("import_jobs", str(path), verbosity=0)

    rows = JobVersion.objects.filter(job__name__startswith="imported-")
    assert rows.count() == 3
    assert {row.snapshot["cron_expression"] for row in rows} == {"0 1 * * *"}


def test_it_names_the_admin_user_who_changed_the_schedule_in_the_admin(staff_client, make_job):
    from tests.jobs.conftest import job_form_data

    job = make_job("nightly-report", cron_expression="0 3 * * *")

    response = staff_client.post(f"/admin/jobs/job/{job.pk}/change/", job_form_data(job, cron_expression="15 3 * * *"))

    assert response.status_code == 302
    latest = versions(job)[-1]
    assert (latest.actor_label, latest.source) == ("boss", "admin")
    assert latest.changes == {"cron_expression": ["0 3 * * *", "15 3 * * *"]}


@pytest.mark.django_db(transaction=True)
def test_it_completes_the_latest_version_recorded_before_the_overlap_policy_was_versioned(make_job):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    job = make_job("nightly-report", jitter_seconds=30, overlap=Job.Overlap.ALLOW, max_concurrent=2)
    added = ("queue", "jitter_seconds", "overlap", "max_concurrent", "window_action", "chain_deadline_seconds")
    recorded_then = {name: value for name, value in versions(job)[0].snapshot.items() if name not in added}
    JobVersion.objects.filter(job=job).update(snapshot=recorded_then)

    executor = MigrationExecutor(connection)
    executor.migrate([("jobs", "0027_job_queue_and_jitter")])
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    Job.objects.get(pk=job.pk).save()  # nothing changed: nothing recorded
    assert len(versions(job)) == 1
    job.max_concurrent = 4
    job.save()
    assert versions(job)[-1].changes == {"max_concurrent": [2, 4]}
