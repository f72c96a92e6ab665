import pytest
from django.contrib.auth import get_user_model

from jobs.models import AuditEntry, Job, JobRun
from jobs.running.run_requests import jobs_run_now

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456789")
    client.force_login(user)
    client.user = user
    return client


def test_it_shows_the_schedule_in_words_and_next_runs_in_the_jobs_timezone(staff_client, make_job):
    job = make_job("morning", cron_expression="0 9 * * *", timezone="America/New_York")
    page = staff_client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()
    assert "At 09:00 (America/New_York)" in page
    assert page.count(" 09:00 E") == 5  # five next runs, shown as 09:00 EST/EDT


def test_it_runs_now_and_reports_an_active_run_instead_of_starting_another(make_job, django_user_model):
    user = django_user_model.objects.create_superuser("ops")
    job = make_job("nightly")
    started, refused = jobs_run_now(jobs=[job], user=user)
    assert started == [f"nightly: run #{JobRun.objects.get().pk} queued"]
    started, refused = jobs_run_now(jobs=[job], user=user)
    assert started == [] and "not started, run #" in refused[0]
    assert JobRun.objects.filter(status=JobRun.Status.SKIPPED, triggered_by_user=user).count() == 1


def test_it_rejects_bad_cron_in_the_form_naming_the_field(staff_client):
    response = staff_client.post(
        "/admin/jobs/job/add/",
        {
            "name": "bad",
            "command": "test_job",
            "cron_expression": "99 * * * *",
            "timezone": "UTC",
            "config": "{}",
            "timeout_seconds": 60,
            "max_retries": 0,
            "retry_backoff_seconds": 60,
            "runs-TOTAL_FORMS": 0,
            "runs-INITIAL_FORMS": 0,
            "operator_groups-TOTAL_FORMS": 0,
            "operator_groups-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    assert "is not a valid cron expression" in response.content.decode()
    assert not Job.objects.exists()


def test_it_audits_changes_made_in_admin(staff_client, make_job):
    job = make_job("nightly", cron_expression="0 3 * * *")
    data = {
        "name": "nightly",
        "command": "test_job",
        "cron_expression": "0 4 * * *",
        "timezone": "UTC",
        "config": "{}",
        "enabled": "on",
        "timeout_seconds": 3600,
        "max_retries": 0,
        "retry_backoff_seconds": 60,
        "notify_on_failure": "on",
        "escalate_after_failures": 3,
        "runs-TOTAL_FORMS": 0,
        "runs-INITIAL_FORMS": 0,
        "operator_groups-TOTAL_FORMS": 0,
        "operator_groups-INITIAL_FORMS": 0,
    }
    response = staff_client.post(f"/admin/jobs/job/{job.pk}/change/", data)
    assert response.status_code == 302
    entry = AuditEntry.objects.get()
    assert entry.actor == staff_client.user and entry.action == "update"
    assert entry.changes["cron_expression"] == ["0 3 * * *", "0 4 * * *"]
    job.refresh_from_db()
    assert job.periodic_task.crontab.hour == "4"
