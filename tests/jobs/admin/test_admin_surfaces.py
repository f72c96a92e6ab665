"""The admin as an operations tool: handler list, cron by field, next runs, actions, read-only
runs, the write-only secret, and an audit entry for every create, change and delete."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from core.crypto import secret_decrypt
from jobs.models import AuditEntry, Job, JobRun, WebhookHandler
from tests.jobs.conftest import job_form_data

pytestmark = pytest.mark.django_db


def test_it_offers_the_management_commands_that_exist_as_a_list(staff_client):
    page = staff_client.get("/admin/jobs/job/add/").content.decode()
    assert '<select name="command"' in page
    for command in ("test_job", "clearsessions", "process_jobs"):
        assert f'<option value="{command}"' in page
    assert '<option value="runserver"' not in page


def test_it_refuses_a_command_that_does_not_exist(staff_client, make_job):
    job = make_job("nightly")
    response = staff_client.post(f"/admin/jobs/job/{job.pk}/change/", job_form_data(job, command="no_such_cmd"))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_it_names_the_cron_field_in_its_error(staff_client, make_job):
    job = make_job("nightly")
    for bad, text in (("99 * * * *", "is not a valid cron expression"), ("* * *", "must have 5 fields")):
        response = staff_client.post(f"/admin/jobs/job/{job.pk}/change/", job_form_data(job, cron_expression=bad))
        page = response.content.decode()
        assert response.status_code == 200 and "Cron expression" in page and text in page
    job.refresh_from_db()
    assert job.cron_expression == "* * * * *"


def test_it_runs_now_from_the_changelist_and_reports_an_overlap(staff_client, make_job):
    job = make_job("nightly")
    data = {"action": "run_now", "_selected_action": [job.pk]}
    first = staff_client.post("/admin/jobs/job/", data, follow=True).content.decode()
    run = JobRun.objects.get()
    assert f"ightly: run #{run.pk} queued" in first  # the admin capitalises messages
    second = staff_client.post("/admin/jobs/job/", data, follow=True).content.decode()
    assert f"ightly: not started, run #{run.pk} is queued" in second
    assert JobRun.objects.filter(status="queued").count() == 1


def test_it_enables_and_disables_with_an_audit_entry_per_job(staff_client, make_job):
    job = make_job("nightly")
    staff_client.post("/admin/jobs/job/", {"action": "disable", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert not job.enabled and not job.periodic_task.enabled
    entry = AuditEntry.objects.get()
    assert entry.actor == staff_client.user and entry.changes == {
        "paused": [False, True],
        "reason": [None, ""],
        "until": [None, None],
    }


def test_it_shows_runs_read_only_with_filters_duration_and_formatted_summary(staff_client, make_job):
    job = make_job("nightly")
    now = timezone.now()
    run = JobRun.objects.create(
        job=job,
        triggered_by="manual",
        status="failed",
        started_at=now,
        finished_at=now,
        duration=timedelta(seconds=2.5),
        summary={"charges": 3, "ids": [1, 2]},
        error="CommandError: nope",
        output="hello output",
    )
    listing = staff_client.get("/admin/jobs/jobrun/?status__exact=failed&triggered_by__exact=manual").content.decode()
    # The duration column; no date hierarchy (its per-date queries would read every run).
    assert "2.5 s" in listing and 'class="toplinks"' not in listing
    page = staff_client.get(f"/admin/jobs/jobrun/{run.pk}/change/").content.decode()
    assert '"charges": 3' in page.replace("&quot;", '"') and "CommandError: nope" in page and "hello output" in page
    assert 'name="_save"' not in page
    assert staff_client.post(f"/admin/jobs/jobrun/{run.pk}/change/", {}).status_code == 403
    assert staff_client.get(f"/admin/jobs/jobrun/?job__id__exact={job.pk}").status_code == 200


def handler_data(**changes) -> dict:
    data = {
        "name": "billing-hook",
        "url": "https://hooks.example.com/run",
        "method": "POST",
        "auth": "bearer",
        "auth_username": "",
        "auth_header_name": "",
        "extra_headers": "{}",
        "timeout_seconds": 10,
        "new_secret": "",
    }
    data.update(changes)
    return data


def test_it_stores_the_secret_encrypted_and_never_renders_it(staff_client, monkeypatch):
    monkeypatch.setattr("jobs.forms.resolve_checked", lambda host, port: [])
    response = staff_client.post("/admin/jobs/webhookhandler/add/", handler_data(new_secret="s3cr3t-token-value"))
    assert response.status_code == 302
    handler = WebhookHandler.objects.get()
    assert handler.secret and "s3cr3t-token-value" not in handler.secret
    assert secret_decrypt(handler.secret) == "s3cr3t-token-value"
    for url in ("/admin/jobs/webhookhandler/", f"/admin/jobs/webhookhandler/{handler.pk}/change/"):
        page = staff_client.get(url).content.decode()
        assert "s3cr3t-token-value" not in page and handler.secret not in page
        assert "set (write-only)" in page
    # Saving without a new secret keeps it; a new one replaces it; "clear" removes it.
    change = f"/admin/jobs/webhookhandler/{handler.pk}/change/"
    staff_client.post(change, handler_data(timeout_seconds=20))
    handler.refresh_from_db()
    assert secret_decrypt(handler.secret) == "s3cr3t-token-value" and handler.timeout_seconds == 20
    staff_client.post(change, handler_data(new_secret="another-one"))
    handler.refresh_from_db()
    assert secret_decrypt(handler.secret) == "another-one"
    staff_client.post(change, handler_data(auth="none", clear_secret="on"))
    handler.refresh_from_db()
    assert handler.secret == ""
    entries = AuditEntry.objects.filter(object_type="webhookhandler").order_by("id")
    assert [e.action for e in entries] == ["create", "update", "update", "update"]
    assert entries[0].changes["secret"] == ["[redacted]", "[redacted]"]
    assert "another-one" not in str(list(AuditEntry.objects.values_list("changes", flat=True)))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/",
        "http://[::1]/",
        "ftp://example.com/file",
        "https://user:pw@hooks.example.com/",
    ],
)
def test_it_refuses_to_save_a_handler_pointing_at_a_forbidden_address(staff_client, url):
    response = staff_client.post("/admin/jobs/webhookhandler/add/", handler_data(url=url, new_secret="x"))
    assert response.status_code == 200
    assert not WebhookHandler.objects.exists()


def test_it_requires_a_secret_for_authenticated_handlers(staff_client, monkeypatch):
    monkeypatch.setattr("jobs.forms.resolve_checked", lambda host, port: [])
    response = staff_client.post("/admin/jobs/webhookhandler/add/", handler_data())
    assert "This authentication needs a secret." in response.content.decode()


def test_it_audits_create_change_and_delete_of_jobs_and_schedules(staff_client, make_job):
    job = make_job("nightly")
    data = job_form_data(job, name="created-here", cron_expression="5 4 * * *")
    assert staff_client.post("/admin/jobs/job/add/", data).status_code == 302
    created = Job.objects.get(name="created-here")
    staff_client.post(f"/admin/jobs/job/{created.pk}/change/", job_form_data(created, cron_expression="6 4 * * *"))
    staff_client.post(f"/admin/jobs/job/{created.pk}/delete/", {"post": "yes"})
    assert not Job.objects.filter(name="created-here").exists()
    actions = list(AuditEntry.objects.filter(object_type="job").order_by("id").values_list("action", flat=True))
    assert actions == ["create", "update", "delete"]

    crontab = CrontabSchedule.objects.create(minute="0", hour="1")
    task = PeriodicTask.objects.create(name="legacy", task="celery.backend_cleanup", crontab=crontab)
    staff_client.post(
        "/admin/django_celery_beat/periodictask/", {"action": "disable_tasks", "_selected_action": [task.pk]}
    )
    staff_client.post(f"/admin/django_celery_beat/periodictask/{task.pk}/delete/", {"post": "yes"})
    assert list(
        AuditEntry.objects.filter(object_type="periodictask").order_by("id").values_list("action", flat=True)
    ) == ["update", "delete"]


@pytest.mark.parametrize(
    ("command", "config", "shown"),
    [
        ("test_job", {"bogus": 1}, ["Unknown option &#x27;bogus&#x27; for test_job", "Valid options: as_of, dry_run"]),
        ("test_job", {"as_of": "2026-13-45"}, ["argument --as-of", "2026-13-45"]),
        ("test_sleep_job", {"seconds": "soon"}, ["argument --seconds: invalid float value"]),
        ("test_job", {"dry_run": "yes"}, ["argument --dry-run: ignored explicit argument"]),
    ],
)
def test_it_refuses_a_config_the_command_would_refuse_naming_the_option(staff_client, make_job, command, config, shown):
    job = make_job("nightly", command=command)
    data = job_form_data(job, config=json.dumps(config))
    response = staff_client.post(f"/admin/jobs/job/{job.pk}/change/", data)
    page = response.content.decode()
    assert response.status_code == 200 and "Please correct the error" in page
    for text in shown:
        assert text in page
    job.refresh_from_db()
    assert job.config == {}
    assert not Job.objects.exclude(pk=job.pk).exists()
    assert staff_client.post("/admin/jobs/job/add/", {**data, "name": "another"}).status_code == 200
    assert not Job.objects.filter(name="another").exists()


def test_it_saves_a_config_the_command_accepts_and_runs_with_it(staff_client, make_job):
    job = make_job("sleeper", command="test_sleep_job")
    data = job_form_data(job, config='{"seconds": 0.01, "dry_run": true}')
    assert staff_client.post(f"/admin/jobs/job/{job.pk}/change/", data).status_code == 302
    job.refresh_from_db()
    assert job.config == {"seconds": 0.01, "dry_run": True}
    from jobs.running.runner import run_execute, run_trigger

    run = run_execute(run_trigger(job=job, triggered_by="manual", dispatch=False).run.pk)
    assert run.status == JobRun.Status.SUCCEEDED and run.summary == {"slept_seconds": 0.01, "dry_run": True}
