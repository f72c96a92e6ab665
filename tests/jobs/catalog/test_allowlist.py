"""A job runs only what Cronhouse was told it may run: a command on the allow-list (job
definitions, JobCommands, JOBS_EXTRA_COMMANDS), with only the options that command declares.
Refused on save by every surface that sets a command, and again by the worker before it runs."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session

from jobs.models import ApiKey, Job, JobRun
from jobs.running.runner import run_execute, run_trigger
from notifications.models import Notification
from tests.jobs.conftest import PASSWORD, job_form_data

pytestmark = pytest.mark.django_db

# What an attacker with add_job / change_job / run_job tried, with the config that did harm.
REFUSED = [
    ("flush", {"no_input": True}),
    ("dumpdata", {"output": "/tmp/cronhouse-dump.json"}),
    ("loaddata", {"": ["fixture.json"]}),
    ("migrate", {"": ["jobs", "zero"]}),
    ("create_api_key", {"": ["stolen"]}),
    ("import_jobs", {"": ["/tmp/jobs.json"]}),
    ("seed_demo", {}),
    ("sendtestemail", {"": ["attacker@example.com"]}),
    ("shell", {"command": "import os; os.system('id')"}),
]


@pytest.fixture
def operator(client, django_user_model):
    """A staff login with only add_job, change_job, view_job and run_job."""
    user = django_user_model.objects.create_user("operator", "op@example.com", PASSWORD, is_staff=True)
    codenames = ["add_job", "change_job", "view_job", "run_job", "view_jobrun"]
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="jobs", codename__in=codenames))
    client.force_login(user)
    return client


def add_form(**changes) -> dict:
    """The admin's add form for a new job, as a browser posts it."""
    data = job_form_data(Job(name="new-job", command="test_job", cron_expression="* * * * *"))
    data.update(changes)
    return data


def run_now(job: Job, capture) -> JobRun:
    """Trigger and execute one run in this process, its on-commit work (alerts) included."""
    with capture(execute=True):
        run = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run
        return run_execute(run.pk, dispatch_retry=False)


def test_it_offers_only_the_commands_on_the_allow_list(operator):
    page = operator.get("/admin/jobs/job/add/").content.decode()
    for allowed in ("test_job", "clearsessions", "process_jobs", "generate_charges", "process_notifications"):
        assert f'<option value="{allowed}"' in page
    for refused in [command for command, _ in REFUSED] + ["runserver", "dbshell", "createsuperuser"]:
        assert f'<option value="{refused}"' not in page


@pytest.mark.parametrize(("command", "config"), REFUSED)
def test_it_refuses_a_command_off_the_allow_list_in_the_admin_and_writes_nothing(
    operator, django_user_model, command, config
):
    response = operator.post("/admin/jobs/job/add/", add_form(command=command, config=json.dumps(config)))
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Job.objects.exists()
    assert django_user_model.objects.filter(username="operator").exists()


def test_it_refuses_to_save_again_a_job_whose_stored_command_is_not_allowed(operator, make_job):
    job = make_job("nightly")
    Job.objects.filter(pk=job.pk).update(command="flush", config={"no_input": True})  # a restore, raw SQL
    page = operator.get(f"/admin/jobs/job/{job.pk}/change/")
    assert page.status_code == 200 and "flush  (not on the allow-list)" in page.content.decode()
    job.refresh_from_db()
    response = operator.post(f"/admin/jobs/job/{job.pk}/change/", job_form_data(job, description="again"))
    assert response.status_code == 200
    assert "command &#x27;flush&#x27; is not on the allow-list" in response.content.decode()
    job.refresh_from_db()
    assert job.description == ""


@pytest.mark.parametrize(
    ("command", "config", "shown"),
    [
        ("test_job", {"": ["x"]}, "Config key &#x27;&#x27; is not an option name"),
        ("test_job", {"--": ["x"]}, "Config key &#x27;--&#x27; is not an option name"),
        ("test_job", {"-v": "3"}, "Config key &#x27;-v&#x27; is not an option name"),
        ("test_job", {"---dry-run": True}, "is not an option name"),
        ("test_job", {"dry": True}, "Unknown option &#x27;dry&#x27; for test_job"),  # no abbreviation
        ("test_job", {"help": True}, "Unknown option &#x27;help&#x27;"),
        ("test_job", {"settings": "attacker.settings"}, "Unknown option &#x27;settings&#x27;"),
        ("test_sleep_job", {"seconds": [1, "--", "x"]}, "may not start with &#x27;-&#x27;"),
        ("test_sleep_job", {"seconds": [1, 2]}, "takes one value, not a list of 2"),
        ("test_sleep_job", {"seconds": {"a": 1}}, "a value is text, a number, true, false or a list"),
        ("clearsessions", {"": ["x"]}, "is not an option name"),
    ],
)
def test_it_refuses_a_config_that_smuggles_arguments(staff_client, make_job, command, config, shown):
    job = make_job("nightly", command=command)
    response = staff_client.post(f"/admin/jobs/job/{job.pk}/change/", job_form_data(job, config=json.dumps(config)))
    page = response.content.decode()
    assert response.status_code == 200 and "Please correct the error" in page and shown in page
    job.refresh_from_db()
    assert job.config == {}


def test_it_runs_a_command_the_installation_names_in_its_setting(staff_client, settings, capture_on_commit):
    data = add_form(command="check", config=json.dumps({"deploy": False}))
    refused = staff_client.post("/admin/jobs/job/add/", data)
    assert refused.status_code == 200 and not Job.objects.exists()
    settings.JOBS_EXTRA_COMMANDS = ["check"]
    assert staff_client.post("/admin/jobs/job/add/", data).status_code == 302
    job = Job.objects.get(name="new-job")
    run = run_now(job, capture_on_commit)
    assert run.status == JobRun.Status.SUCCEEDED and "System check identified no issues" in run.output
    # Taken off the list again: the worker refuses what the form once accepted.
    settings.JOBS_EXTRA_COMMANDS = []
    again = run_now(job, capture_on_commit)
    assert again.status == JobRun.Status.FAILED and "command 'check' is not on the allow-list" in again.error


@pytest.fixture
def capture_on_commit(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.mark.usefixtures("alert_recipients")
def test_it_fails_a_run_of_a_command_stored_off_the_allow_list_and_runs_nothing(
    make_job, django_user_model, client, capture_on_commit
):
    client.force_login(django_user_model.objects.create_user("someone", "someone@example.com", PASSWORD))
    job = make_job("nightly")
    Job.objects.filter(pk=job.pk).update(command="flush", config={"no_input": True})
    job.refresh_from_db()
    run = run_now(job, capture_on_commit)
    assert run.status == JobRun.Status.FAILED
    assert run.error.startswith("Not run: command 'flush' is not on the allow-list")
    assert django_user_model.objects.filter(username="someone").exists() and Session.objects.exists()
    alert = Notification.objects.get(template="job_alerts/failed")
    assert alert.recipient == "ops@example.com" and alert.context["job_name"] == "nightly"


@pytest.mark.parametrize(
    ("command", "config"),
    [
        ("test_job", {"": ["x"]}),
        ("create_api_key", {"": ["stolen"]}),
        ("test_sleep_job", {"seconds": [0, "--", "x"]}),
    ],
)
def test_it_fails_a_run_whose_stored_config_smuggles_arguments(make_job, capture_on_commit, command, config):
    job = make_job("nightly", command="test_sleep_job", config={"seconds": 0})
    Job.objects.filter(pk=job.pk).update(command=command, config=config)
    job.refresh_from_db()
    run = run_now(job, capture_on_commit)
    assert run.status == JobRun.Status.FAILED and run.error.startswith("Not run: ")
    assert run.output == "" and run.summary == {}
    assert not ApiKey.objects.exists()


def test_it_still_runs_the_shipped_jobs_and_the_test_fixtures(make_job, capture_on_commit):
    for command, config in (("clearsessions", {}), ("test_job", {"dry_run": True}), ("test_sleep_job", {"seconds": 0})):
        job = make_job(command, command=command, config=config)
        assert run_now(job, capture_on_commit).status == JobRun.Status.SUCCEEDED
    failing = make_job("failing", command="test_fail_job")
    assert "failed on purpose" in run_now(failing, capture_on_commit).error


@pytest.mark.parametrize(
    ("config", "shown"),
    [
        ({"": ["jobs"]}, "is not an option name"),
        ({"tag": ["models", "jobs"]}, "takes one value, not a list of 2"),  # "jobs" would be an app label
        ({"deploy": True, "--": ["jobs"]}, "is not an option name"),
        ({"fail_level": "NOPE"}, "argument --fail-level: invalid choice"),
    ],
)
def test_it_keeps_arguments_out_of_an_extra_command_that_takes_them(staff_client, settings, config, shown):
    settings.JOBS_EXTRA_COMMANDS = ["check"]  # check [app_label ...]: positional arguments of its own
    response = staff_client.post("/admin/jobs/job/add/", add_form(command="check", config=json.dumps(config)))
    page = response.content.decode()
    assert response.status_code == 200 and shown in page.replace("&#x27;", "'")
    assert not Job.objects.exists()
