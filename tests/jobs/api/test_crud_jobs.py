"""The jobs CRUD API: list by cursor, create, read, update, delete; the admin's validation and
allow-list, the one access rule, the schedule in beat's rows, and an audit entry for each change."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django_celery_beat.models import PeriodicTask

from jobs.models import AuditEntry, Job, JobOperatorGroup, JobRun
from jobs.permissions.api_keys import api_key_create

pytestmark = pytest.mark.django_db
JOBS = "/api/jobs"
MINUTELY = {"name": "x", "command": "test_job", "cron_expression": "* * * * *"}
CHOSEN_SETTINGS = ("queue", "jitter_seconds", "overlap", "max_concurrent", "window_action", "chain_deadline_seconds")


def test_it_creates_a_job_with_its_schedule_in_beat_rows_and_audits_it(rest):
    body = {"name": "nightly", "command": "test_job", "cron_expression": "0 2 * * 7", "timezone": "Europe/Berlin"}
    response = rest("post", JOBS, body)

    assert response.status_code == 201, response.json()
    job = Job.objects.get(name="nightly")
    assert response["Location"] == f"/api/jobs/{job.pk}"
    shown = response.json()
    assert shown["id"] == job.pk and shown["enabled"] is True and shown["timeout_seconds"] == 3600
    assert shown["cron_expression"] == "0 2 * * 0"  # Sunday stored as beat holds it
    task = PeriodicTask.objects.get(pk=job.periodic_task_id)
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("0", "2", "Europe/Berlin")
    assert job.next_fire_at is not None
    entry = AuditEntry.objects.get(action="create", object_id=str(job.pk))
    assert entry.actor_label == "API key JOBS_SECRET_KEY" and entry.changes["name"] == [None, "nightly"]


def test_it_lists_jobs_a_page_at_a_time_by_cursor(rest, make_job):
    for name in ["a-job", "b-job", "c-job"]:
        make_job(name)
    first = rest("get", f"{JOBS}?limit=2").json()
    assert [job["name"] for job in first["results"]] == ["a-job", "b-job"]
    second = rest("get", f"{JOBS}?limit=2&cursor={first['next_cursor']}").json()
    assert [job["name"] for job in second["results"]] == ["c-job"] and second["next_cursor"] is None
    assert rest("get", f"{JOBS}?limit=0").status_code == 400
    assert rest("get", f"{JOBS}?cursor=nonsense!").status_code == 400


def test_it_patches_only_the_fields_given_and_moves_the_schedule(rest, make_job):
    job = make_job("nightly", cron_expression="0 2 * * *", max_retries=2)
    response = rest("patch", f"{JOBS}/{job.pk}", {"cron_expression": "30 4 * * *"})

    assert response.status_code == 200, response.json()
    job = Job.objects.get(pk=job.pk)
    assert job.cron_expression == "30 4 * * *" and job.max_retries == 2
    assert job.next_fire_at.minute == 30
    entry = AuditEntry.objects.get(action="update", object_id=str(job.pk))
    assert entry.changes == {"cron_expression": ["0 2 * * *", "30 4 * * *"]}


def test_it_puts_a_whole_job_and_fields_left_out_take_their_defaults(rest, make_job):
    job = make_job("nightly", max_retries=2, description="old")
    read = rest("get", f"{JOBS}/{job.pk}").json()
    read.update(description="new")  # what a client read, sent back changed, read-only fields included
    assert rest("put", f"{JOBS}/{job.pk}", read).status_code == 200
    job.refresh_from_db()
    assert (job.description, job.max_retries) == ("new", 2)

    response = rest("put", f"{JOBS}/{job.pk}", {"name": "nightly", "command": "test_job", "interval_seconds": 60})
    assert response.status_code == 200, response.json()
    job = Job.objects.get(pk=job.pk)
    assert (job.description, job.max_retries, job.cron_expression, job.interval_seconds) == ("", 0, "", 60)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "command": "flush", "cron_expression": "* * * * *"}, "command"),
        ({"name": "x", "command": "shell", "cron_expression": "* * * * *"}, "command"),
        ({"name": "x", "command": "test_job", "cron_expression": "0 0 31 2 *"}, "cron_expression"),
        ({"name": "x", "command": "test_job", "cron_expression": "61 * * * *"}, "cron_expression"),
        ({"name": "x", "command": "test_job", "cron_expression": "* * * * *", "config": {"no_such": 1}}, "config"),
        ({"name": "x", "command": "test_job", "cron_expression": "* * * * *", "timeout_seconds": 0}, "timeout_seconds"),
        ({"name": "x", "command": "test_job", "cron_expression": "* * * * *", "enabled": "yes"}, "enabled"),
        ({"name": "x", "command": "test_job", "cron_expression": "* * * * *", "max_retries": True}, "max_retries"),
        ({"name": "x y", "command": "test_job", "cron_expression": "* * * * *"}, "name"),
        ({"name": "x", "webhook_handler": "nobody", "cron_expression": "* * * * *"}, "webhook_handler"),
        ({"name": "x", "command": "test_job", "cron_expression": "* * * * *", "surprise": 1}, "surprise"),
        ({**MINUTELY, "queue": "nowhere"}, "queue"),
        ({**MINUTELY, "max_concurrent": 3}, "max_concurrent"),
        ({**MINUTELY, "jitter_seconds": 901}, "jitter_seconds"),
        ({**MINUTELY, "window_action": "late"}, "window_action"),
        ({**MINUTELY, "chain_deadline_seconds": 59}, "chain_deadline_seconds"),
    ],
)
def test_it_refuses_bad_input_with_400_and_the_field_at_fault(rest, body, field):
    response = rest("post", JOBS, body)
    assert response.status_code == 400
    assert field in response.json()["fields"], response.json()
    assert not Job.objects.exists() and not PeriodicTask.objects.filter(name__contains="x").exists()


def test_it_shows_and_takes_the_overlap_queue_jitter_window_and_chain_settings(rest, make_job, settings):
    settings.JOBS_QUEUES = ["slow"]
    job = make_job("nightly")
    shown = rest("get", f"{JOBS}/{job.pk}").json()
    assert {name: shown[name] for name in CHOSEN_SETTINGS} == {
        "queue": "",
        "jitter_seconds": 0,
        "overlap": "skip",
        "max_concurrent": 1,
        "window_action": "skip",
        "chain_deadline_seconds": 21600,
    }
    chosen = {
        "queue": "slow",
        "jitter_seconds": 120,
        "overlap": "allow",
        "max_concurrent": 4,
        "window_action": "defer",
        "chain_deadline_seconds": 3600,
    }

    response = rest("patch", f"{JOBS}/{job.pk}", chosen)

    assert response.status_code == 200, response.json()
    assert {name: response.json()[name] for name in CHOSEN_SETTINGS} == chosen
    job.refresh_from_db()
    assert {name: getattr(job, name) for name in CHOSEN_SETTINGS} == chosen
    entry = AuditEntry.objects.get(action="update", object_id=str(job.pk))
    assert entry.changes["overlap"] == ["skip", "allow"] and entry.changes["queue"] == ["", "slow"]


def test_it_answers_409_to_a_name_already_taken(rest, make_job):
    make_job("nightly")
    response = rest("post", JOBS, {"name": "nightly", "command": "test_job", "cron_expression": "* * * * *"})
    assert response.status_code == 409 and "name" in response.json()["fields"]


def test_it_answers_404_405_and_refuses_a_non_object_body(rest, make_job):
    job = make_job("nightly")
    assert rest("get", f"{JOBS}/999999").status_code == 404
    assert rest("patch", f"{JOBS}/999999", {"description": "x"}).status_code == 404
    not_allowed = rest("post", f"{JOBS}/{job.pk}", {})
    assert not_allowed.status_code == 405 and "PATCH" in not_allowed["Allow"]
    assert rest("patch", f"{JOBS}/{job.pk}", raw="[1]").status_code == 400


def test_it_deletes_a_job_with_its_beat_task_and_audits_it(rest, make_job):
    job = make_job("nightly")
    task_id = job.periodic_task_id
    assert rest("delete", f"{JOBS}/{job.pk}").status_code == 204
    assert not Job.objects.filter(pk=job.pk).exists() and not PeriodicTask.objects.filter(pk=task_id).exists()
    assert AuditEntry.objects.filter(action="delete", object_repr="nightly").exists()


def test_it_answers_409_to_deleting_a_job_with_an_active_run(rest, make_job):
    job = make_job("nightly")
    run = JobRun.objects.create(job=job, triggered_by=JobRun.Trigger.MANUAL)
    response = rest("delete", f"{JOBS}/{job.pk}")
    assert response.status_code == 409 and response.json()["active_run_id"] == run.pk
    assert Job.objects.filter(pk=job.pk).exists()


def test_it_lets_a_named_api_key_read_its_scope_but_never_write(rest, make_job):
    mine, other = make_job("mine"), make_job("other")
    _, token = api_key_create(name="scoped", jobs=[mine])

    listed = rest("get", JOBS, token=token).json()
    assert [job["name"] for job in listed["results"]] == ["mine"]
    assert rest("get", f"{JOBS}/{other.pk}", token=token).status_code == 404
    refused = rest("patch", f"{JOBS}/{mine.pk}", {"description": "x"}, token=token)
    assert refused.status_code == 403 and "API keys" in refused.json()["error"]
    assert rest("delete", f"{JOBS}/{mine.pk}", token=token).status_code == 403
    body = {"name": "new", "command": "test_job", "cron_expression": "* * * * *"}
    assert rest("post", JOBS, body, token=token).status_code == 403
    assert not Job.objects.filter(name="new").exists()
    assert AuditEntry.objects.filter(refused__contains="API keys").count() == 3


def test_it_holds_staff_to_their_permissions_and_operator_groups(client, rest, make_job, django_user_model):
    open_job, limited = make_job("open"), make_job("limited")
    JobOperatorGroup.objects.create(job=limited, group=Group.objects.create(name="ops"))
    user = django_user_model.objects.create_user("clerk", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_jobrun"]))
    client.force_login(user)

    assert [job["name"] for job in rest("get", JOBS, token=None).json()["results"]] == ["open"]
    refused = rest("patch", f"{JOBS}/{open_job.pk}", {"description": "x"}, token=None)
    assert refused.status_code == 403 and "jobs.change_job" in refused.json()["error"]
    body = {"name": "new", "command": "test_job", "cron_expression": "* * * * *"}
    assert rest("post", JOBS, body, token=None).status_code == 403

    user.user_permissions.add(*Permission.objects.filter(codename__in=["change_job", "add_job"]))
    user = django_user_model.objects.get(pk=user.pk)
    client.force_login(user)
    assert rest("patch", f"{JOBS}/{open_job.pk}", {"description": "x"}, token=None).status_code == 200
    assert rest("patch", f"{JOBS}/{limited.pk}", {"description": "x"}, token=None).status_code == 404
    assert rest("delete", f"{JOBS}/{open_job.pk}", token=None).status_code == 403  # no delete_job
    assert rest("post", JOBS, body, token=None).status_code == 201
    assert AuditEntry.objects.get(action="create", refused="").actor == user

    # Enabling or disabling needs jobs.toggle_job too.
    refused = rest("patch", f"{JOBS}/{open_job.pk}", {"enabled": False}, token=None)
    assert refused.status_code == 403 and "jobs.toggle_job" in refused.json()["error"]
    assert Job.objects.get(pk=open_job.pk).enabled is True
    user.user_permissions.add(Permission.objects.get(codename="toggle_job"))
    client.force_login(django_user_model.objects.get(pk=user.pk))
    assert rest("patch", f"{JOBS}/{open_job.pk}", {"enabled": False}, token=None).status_code == 200
    assert Job.objects.get(pk=open_job.pk).enabled is False


def test_it_makes_a_webhook_job_by_the_handlers_name(rest):
    from jobs.models import WebhookHandler

    WebhookHandler.objects.create(name="ping", url="https://hooks.example.com/ping")
    response = rest("post", JOBS, {"name": "pinger", "webhook_handler": "ping", "interval_seconds": 300})
    assert response.status_code == 201, response.json()
    assert response.json()["webhook_handler"] == "ping" and response.json()["command"] == ""
    both = {"name": "both", "webhook_handler": "ping", "command": "test_job", "interval_seconds": 300}
    assert rest("post", JOBS, both).status_code == 400


def test_it_lists_a_page_in_the_same_few_queries_however_many_jobs(rest, make_job, django_assert_max_num_queries):
    from jobs.models import WebhookHandler

    handler = WebhookHandler.objects.create(name="ping", url="https://hooks.example.com/ping")
    for number in range(3):
        make_job(f"a-{number}")
    with django_assert_max_num_queries(12) as few:
        assert len(rest("get", JOBS).json()["results"]) == 3
    for number in range(30):
        make_job(f"b-{number}", cron_expression=f"{number} * * * *")
        make_job(f"c-{number}", command="", webhook_handler=handler, interval_seconds=60 + number)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(rest("get", JOBS).json()["results"]) == 63
