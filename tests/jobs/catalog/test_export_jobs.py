"""manage.py export_jobs writes what import_jobs reads: export, import into an empty database,
export again gives the same file; secrets travel as the names of environment variables only."""

from __future__ import annotations

import json
from datetime import date, time
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from core.crypto import secret_decrypt
from jobs.catalog.portable import JOB_FIELDS, job_definition
from jobs.forms import WebhookHandlerAdminForm
from jobs.models import AuditEntry, BlackoutWindow, Job, JobDependency, JobOperatorGroup, WebhookHandler

pytestmark = pytest.mark.django_db
SECRET = "tok-5e4d3c2b1a-do-not-print"
HEADER_VALUE = "hdr-0f9e8d7c-do-not-print"
SECRET_VARIABLE = "CRONHOUSE_HANDLER_WAREHOUSE_LOAD_SECRET"
HEADER_VARIABLE = "CRONHOUSE_HANDLER_WAREHOUSE_LOAD_HEADER_X_TENANT"


def _export(path=None) -> str:
    out = StringIO()
    call_command("export_jobs", *([str(path)] if path else []), stdout=out, stderr=StringIO())
    return out.getvalue() if path is None else path.read_text()


def _empty_database() -> None:
    """Every row a file carries, except operator groups: their members are the installation's."""
    BlackoutWindow.objects.all().delete()
    Job.objects.all().delete()
    WebhookHandler.objects.all().delete()
    PeriodicTask.objects.all().delete()


@pytest.fixture
def a_fleet(make_job):
    form = WebhookHandlerAdminForm(
        data={
            "name": "warehouse-load",
            "url": "https://etl.example.com/run",
            "method": "POST",
            "auth": "bearer",
            "new_secret": SECRET,
            "extra_headers": json.dumps({"X-Tenant": HEADER_VALUE}),
            "timeout_seconds": 45,
        }
    )
    assert form.is_valid(), form.errors
    handler = form.save()
    make_job("nightly", cron_expression="0 2 * * 7", timezone="Europe/Berlin", max_retries=3, config={})
    make_job("every-minute", interval_seconds=60, enabled=False, description="Ünïcode stays as it is")
    make_job("hooked", command="", webhook_handler=handler, cron_expression="*/15 * * * *", grace_seconds=120)
    return handler


def test_it_round_trips_through_an_empty_database_unchanged(a_fleet, tmp_path, monkeypatch):
    first = _export(tmp_path / "jobs.json")
    assert SECRET not in first and HEADER_VALUE not in first
    written = json.loads(first)
    assert [job["name"] for job in written["jobs"]] == ["every-minute", "hooked", "nightly"]
    assert written["webhook_handlers"][0]["secret_from_env"] == SECRET_VARIABLE
    assert written["webhook_handlers"][0]["extra_headers_from_env"] == {"X-Tenant": HEADER_VARIABLE}

    _empty_database()
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    monkeypatch.setenv(HEADER_VARIABLE, HEADER_VALUE)
    out = StringIO()
    call_command("import_jobs", str(tmp_path / "jobs.json"), stdout=out)
    assert "3 created, 0 already existed; 1 webhook handler(s) created" in out.getvalue()

    assert _export() == first
    handler = WebhookHandler.objects.get()
    assert secret_decrypt(handler.secret) == SECRET
    assert secret_decrypt(handler.extra_headers["X-Tenant"]) == HEADER_VALUE
    hooked = Job.objects.get(name="hooked")
    assert hooked.webhook_handler == handler and hooked.next_fire_at is not None
    assert PeriodicTask.objects.get(pk=hooked.periodic_task_id).crontab.minute == "*/15"


def test_it_refuses_a_file_whose_secret_variable_is_unset_and_imports_nothing(a_fleet, tmp_path, monkeypatch):
    path = tmp_path / "jobs.json"
    _export(path)
    _empty_database()
    monkeypatch.delenv(SECRET_VARIABLE, raising=False)
    monkeypatch.setenv(HEADER_VARIABLE, HEADER_VALUE)
    with pytest.raises(CommandError) as error:
        call_command("import_jobs", str(path), stdout=StringIO())
    assert f"the environment variable {SECRET_VARIABLE} is not set" in str(error.value)
    assert not WebhookHandler.objects.exists() and not Job.objects.exists()


def test_it_imports_a_file_edited_by_hand(a_fleet, tmp_path, monkeypatch):
    path = tmp_path / "jobs.json"
    written = json.loads(_export(path))
    written["jobs"] = [job for job in written["jobs"] if job["name"] != "every-minute"]
    nightly = next(job for job in written["jobs"] if job["name"] == "nightly")
    nightly.update(cron_expression="30 3 * * 1-5", description="moved by a pull request")
    written["jobs"].append({"name": "new-one", "command": "test_job", "cron_expression": "0 12 * * *"})
    written["webhook_handlers"][0]["secret_from_env"] = "MY_OWN_VARIABLE"
    path.write_text(json.dumps(written, indent=4))
    _empty_database()
    monkeypatch.setenv("MY_OWN_VARIABLE", "from-my-vault")
    monkeypatch.setenv(HEADER_VARIABLE, HEADER_VALUE)

    call_command("import_jobs", str(path), stdout=StringIO())

    assert sorted(Job.objects.values_list("name", flat=True)) == ["hooked", "new-one", "nightly"]
    nightly = Job.objects.get(name="nightly")
    assert (nightly.cron_expression, nightly.description, nightly.max_retries) == (
        "30 3 * * 1-5",
        "moved by a pull request",
        3,
    )
    assert secret_decrypt(WebhookHandler.objects.get().secret) == "from-my-vault"


@pytest.mark.parametrize(
    ("edit", "shown"),
    [
        ({"jobs": [{"name": "x", "command": "flush", "cron_expression": "* * * * *"}]}, "not on the allow-list"),
        ({"jobs": [{"name": "x", "webhook_handler": "gone", "interval_seconds": 60}]}, "no webhook handler"),
        (
            {"webhook_handlers": [{"name": "h", "url": "http://127.0.0.1/x"}], "jobs": []},
            "webhook handler h: url:",
        ),
        ({"webhook_handlers": [{"name": "h", "url": "https://a.example.com", "auth": "bearer"}], "jobs": []}, "secret"),
        ({"webhook_handlers": [{"name": "h", "url": "https://a.example.com", "secret": "x"}], "jobs": []}, "Unknown"),
    ],
)
def test_it_refuses_a_hand_edit_the_admin_would_refuse(tmp_path, edit, shown):
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(edit))
    with pytest.raises(CommandError) as error:
        call_command("import_jobs", str(path), stdout=StringIO())
    assert "nothing imported" in str(error.value) and shown in str(error.value)
    assert not WebhookHandler.objects.exists() and not Job.objects.exists()


# Every value of a job a person chooses, none of them its default.
EVERY_FIELD_TUNED = {
    "description": "Monthly owner report",
    "config": {"warn": ["late data"], "report": "owners"},
    "queue": "slow",
    "cron_expression": "15 3 * * 1-5",
    "timezone": "America/New_York",
    "jitter_seconds": 30,
    "enabled": False,
    "overlap": "allow",
    "max_concurrent": 3,
    "timeout_seconds": 600,
    "max_retries": 2,
    "retry_backoff_seconds": 30,
    "expected_duration_seconds": 120,
    "notify_on_failure": False,
    "housekeeping": True,
    "grace_seconds": 300,
    "catch_up": "all",
    "catch_up_limit": 5,
    "escalate_after_failures": 7,
    "window_action": "defer",
    "chain_deadline_seconds": 1800,
}

CHAIN_FILE = """\
{
  "webhook_handlers": [],
  "jobs": [
    {
      "name": "load",
      "description": "",
      "command": "test_job",
      "webhook_handler": null,
      "config": {},
      "queue": "",
      "cron_expression": "0 1 * * *",
      "timezone": "UTC",
      "interval_seconds": null,
      "jitter_seconds": 0,
      "enabled": true,
      "overlap": "skip",
      "max_concurrent": 1,
      "timeout_seconds": 3600,
      "max_retries": 0,
      "retry_backoff_seconds": 60,
      "expected_duration_seconds": null,
      "notify_on_failure": true,
      "housekeeping": false,
      "grace_seconds": null,
      "catch_up": "latest",
      "catch_up_limit": 10,
      "escalate_after_failures": 3,
      "window_action": "skip",
      "chain_deadline_seconds": 21600,
      "waits_for": [],
      "operator_groups": []
    },
    {
      "name": "report",
      "description": "Monthly owner report",
      "command": "test_job",
      "webhook_handler": null,
      "config": {
        "report": "owners",
        "warn": [
          "late data"
        ]
      },
      "queue": "slow",
      "cron_expression": "15 3 * * 1-5",
      "timezone": "America/New_York",
      "interval_seconds": null,
      "jitter_seconds": 30,
      "enabled": false,
      "overlap": "allow",
      "max_concurrent": 3,
      "timeout_seconds": 600,
      "max_retries": 2,
      "retry_backoff_seconds": 30,
      "expected_duration_seconds": 120,
      "notify_on_failure": false,
      "housekeeping": true,
      "grace_seconds": 300,
      "catch_up": "all",
      "catch_up_limit": 5,
      "escalate_after_failures": 7,
      "window_action": "defer",
      "chain_deadline_seconds": 1800,
      "waits_for": [
        "load"
      ],
      "operator_groups": [
        "billing-ops"
      ]
    }
  ],
  "blackout_windows": [
    {
      "name": "christmas",
      "kind": "yearly",
      "starts_on": "2000-12-24",
      "starts_at": "18:00:00",
      "ends_on": "2000-12-27",
      "ends_at": "06:30:00",
      "reason": "Office closed",
      "jobs": [
        "load",
        "report"
      ],
      "groups": [
        "billing-ops"
      ]
    }
  ]
}
"""


@pytest.fixture
def a_tuned_chain(make_job, settings):
    """``report``, every field tuned, waits for ``load``, is limited to billing-ops, and both are
    held by a yearly window that also holds billing-ops' jobs."""
    settings.JOBS_QUEUES = ["slow"]
    operators = Group.objects.create(name="billing-ops")
    load = make_job("load", cron_expression="0 1 * * *")
    report = make_job("report", **EVERY_FIELD_TUNED)
    JobDependency.objects.create(job=report, upstream=load)
    JobOperatorGroup.objects.create(job=report, group=operators)
    window = BlackoutWindow(
        name="christmas",
        kind="yearly",
        starts_on=date(2026, 12, 24),
        starts_at=time(18),
        ends_on=date(2026, 12, 27),
        ends_at=time(6, 30),
        reason="Office closed",
    )
    window.full_clean()
    window.save()
    window.jobs.set([report, load])
    window.groups.set([operators])


def test_it_writes_every_chosen_value_links_and_windows_as_the_same_text_on_either_database(a_tuned_chain):
    defaults = job_definition(Job())
    written = next(job for job in json.loads(_export())["jobs"] if job["name"] == "report")
    # A job runs a command or a handler, on a cron or an interval: the other one stays empty.
    assert [name for name in JOB_FIELDS if written[name] == defaults[name]] == ["webhook_handler", "interval_seconds"]
    # The same literal text on SQLite and PostgreSQL (this test runs on both): key order, dates, times.
    assert _export() == CHAIN_FILE


def test_it_round_trips_a_tuned_chain_with_its_window_and_groups(a_tuned_chain, tmp_path):
    first = _export(tmp_path / "jobs.json")
    _empty_database()
    out = StringIO()

    call_command("import_jobs", str(tmp_path / "jobs.json"), stdout=out)

    assert out.getvalue().strip() == (
        "2 created, 0 already existed; 2 link(s) to upstream jobs and operator groups added; "
        "1 blackout window(s) created, 0 already existed"
    )
    assert _export() == first
    report = Job.objects.get(name="report")
    assert list(report.dependencies.values_list("upstream__name", flat=True)) == ["load"]
    assert list(report.operator_groups.values_list("group__name", flat=True)) == ["billing-ops"]
    window = BlackoutWindow.objects.get()
    assert sorted(window.jobs.values_list("name", flat=True)) == ["load", "report"]
    assert AuditEntry.objects.filter(object_type="blackoutwindow", action="create", actor_label="system").exists()
