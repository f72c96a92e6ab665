"""manage.py import_jobs: many jobs from a file, each with its beat entry and its first slot."""

from __future__ import annotations

import json
from datetime import date, time
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from jobs.models import AuditEntry, BlackoutWindow, Job, JobDependency, JobRun
from jobs.scheduling.firing import due_jobs_fire

pytestmark = pytest.mark.django_db
HOURLY = {"command": "test_job", "cron_expression": "0 * * * *"}


def write(tmp_path, definitions: list[dict]) -> str:
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(json.dumps(definition) for definition in definitions))
    return str(path)


def test_it_creates_every_job_with_its_beat_entry_and_first_slot(tmp_path, make_job):
    make_job("already-here", cron_expression="0 3 * * *", description="tuned by an admin")
    definitions = [
        {"name": f"tenant-{n:03d}", "command": "test_job", "cron_expression": f"{n % 60} * * * *"} for n in range(120)
    ]
    definitions += [
        {"name": "every-30-s", "command": "test_job", "interval_seconds": 30},
        {"name": "already-here", "command": "test_job", "cron_expression": "* * * * *"},
    ]
    out = StringIO()
    call_command("import_jobs", write(tmp_path, definitions), stdout=out)
    assert "121 created, 1 already existed" in out.getvalue()
    assert Job.objects.count() == 122
    assert Job.objects.get(name="already-here").cron_expression == "0 3 * * *"
    tenant = Job.objects.get(name="tenant-007")
    task = PeriodicTask.objects.get(pk=tenant.periodic_task_id)
    assert (task.crontab.minute, task.crontab.hour, json.loads(task.kwargs)) == ("7", "*", {"job_id": tenant.pk})
    assert tenant.next_fire_at.minute == 7 and tenant.late_at > tenant.next_fire_at
    interval = Job.objects.get(name="every-30-s")
    assert PeriodicTask.objects.get(pk=interval.periodic_task_id).interval.every == 30
    # Beat fires what was imported like any other job.
    assert due_jobs_fire(now=tenant.next_fire_at).queued >= 1
    assert JobRun.objects.filter(job=tenant, scheduled_for=tenant.next_fire_at).exists()


def test_it_refuses_the_whole_file_naming_each_bad_definition(tmp_path):
    definitions = [
        {"name": "good", "command": "test_job", "cron_expression": "0 * * * *"},
        {"name": "february", "command": "test_job", "cron_expression": "0 0 31 2 *"},
        {"name": "typo", "command": "test_job", "cron_expresion": "0 * * * *"},
        {"name": "good", "command": "test_job", "cron_expression": "5 * * * *"},
    ]
    with pytest.raises(CommandError) as error:
        call_command("import_jobs", write(tmp_path, definitions))
    message = str(error.value)
    assert "nothing imported" in message and "never fires" in message
    assert "typo: unknown field(s) cron_expresion" in message and "good: named twice" in message
    assert not Job.objects.exists() and not PeriodicTask.objects.filter(name__startswith="cronhouse:").exists()


def test_it_says_what_is_wrong_with_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "jobs.txt"
    path.write_text("name,command\nnightly,test_job\n")
    with pytest.raises(CommandError, match="not JSON or JSON Lines"):
        call_command("import_jobs", str(path))
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_jobs", str(tmp_path / "missing.jsonl"))


@pytest.mark.parametrize(
    ("definition", "shown"),
    [
        ({"command": "shell", "config": {"command": "open('/tmp/pwned', 'w')"}}, "not on the allow-list"),
        ({"command": "flush", "config": {"no_input": True}}, "not on the allow-list"),
        ({"command": "test_job", "config": {"": ["x"]}}, "is not an option name"),
        ({"command": "test_job", "config": {"--": "x"}}, "is not an option name"),
        ({"command": "test_job", "config": {"bogus": 1}}, "Unknown option 'bogus'"),
        ({"command": "test_job", "interval_seconds": 99_999_999_999, "cron_expression": ""}, "more than a year"),
        ({"command": "test_job", "timeout_seconds": 10**12}, "timeout_seconds"),
        ({"command": "test_job", "interval_seconds": True, "cron_expression": ""}, "must be a whole number"),
        ({"command": "test_job", "enabled": "yes"}, "enabled must be true or false"),
        ({"command": ["test_job"]}, "command must be text"),
        ({"command": "test_job", "webhook_handler": 1}, "webhook_handler must be text"),
        ({"webhook_handler": "nobody"}, "no webhook handler is named 'nobody'"),
        ({"command": "test_job", "alert_state": "ok"}, "unknown field(s) alert_state"),
        # What the runner records is not a definition: no file makes a job look healthy.
        (
            {"command": "test_job", "last_run_status": "succeeded", "consecutive_failures": 0},
            "unknown field(s) consecutive_failures, last_run_status",
        ),
    ],
)
def test_it_refuses_a_definition_the_admin_form_would_refuse_and_runs_nothing(tmp_path, definition, shown):
    definitions = [
        {"name": "good", "command": "test_job", "cron_expression": "0 * * * *"},
        {"name": "bad", "cron_expression": "0 * * * *", **definition},
    ]
    with pytest.raises(CommandError) as error:
        call_command("import_jobs", write(tmp_path, definitions))
    message = str(error.value)
    assert "1 invalid definition(s), nothing imported" in message and "bad: " in message and shown in message
    assert not Job.objects.exists() and not JobRun.objects.exists()
    assert not (tmp_path.parent / "pwned").exists()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('[1, 2, "x", null]', "item 1 is 1, not a job object"),
        ('[{"name": "a", "command": "test_job", "cron_expression": "0 * * * *"}, null]', "item 2 is null"),
        ('{"name": "a"}\n[1]\n', "item 2 is a list, not a job object"),
        ('"jobs"', 'item 1 is "jobs"'),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"name": "a", "config": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ],
)
def test_it_says_what_is_wrong_with_a_file_that_is_not_a_list_of_job_objects(tmp_path, text, shown):
    path = tmp_path / "jobs.json"
    path.write_text(text)
    with pytest.raises(CommandError) as error:
        call_command("import_jobs", str(path))
    assert shown in str(error.value)
    assert not Job.objects.exists()


def test_it_links_a_job_to_an_upstream_later_in_the_file_or_already_in_the_database(tmp_path, make_job):
    make_job("extract")
    definitions = [
        {"name": "report", "command": "test_job", "cron_expression": "0 3 * * *", "waits_for": ["load", "extract"]},
        {"name": "load", "command": "test_job", "cron_expression": "0 2 * * *", "waits_for": ["extract"]},
    ]
    out = StringIO()

    call_command("import_jobs", write(tmp_path, definitions), stdout=out)

    assert "2 created, 0 already existed; 3 link(s) to upstream jobs and operator groups added" in out.getvalue()
    waits = JobDependency.objects.order_by("job__name", "upstream__name").values_list("job__name", "upstream__name")
    assert list(waits) == [("load", "extract"), ("report", "extract"), ("report", "load")]


def test_it_leaves_an_existing_jobs_upstreams_as_they_are_and_links_the_new_jobs(tmp_path, make_job):
    extract, load, report = make_job("extract"), make_job("load"), make_job("report")
    JobDependency.objects.create(job=report, upstream=extract)
    JobDependency.objects.create(job=load, upstream=report)
    definitions = [
        # As its fields, an existing job's links are the admin's: the file's are not applied
        # (here they would even close a circle, report -> load -> report).
        {"name": "report", **HOURLY, "waits_for": ["load"]},
        {"name": "summary", **HOURLY, "waits_for": ["report", "load"]},
    ]
    out = StringIO()

    call_command("import_jobs", write(tmp_path, definitions), stdout=out)

    assert "1 created, 1 already existed; 2 link(s) to upstream jobs and operator groups added" in out.getvalue()
    waits = JobDependency.objects.order_by("job__name", "upstream__name").values_list("job__name", "upstream__name")
    assert list(waits) == [("load", "report"), ("report", "extract"), ("summary", "load"), ("summary", "report")]


def test_it_refuses_an_unknown_upstream_and_writes_nothing(tmp_path):
    definitions = [
        {"name": "load", "command": "test_job", "cron_expression": "0 2 * * *"},
        {"name": "report", "command": "test_job", "cron_expression": "0 3 * * *", "waits_for": ["load", "lod"]},
    ]
    with pytest.raises(CommandError) as error:
        call_command("import_jobs", write(tmp_path, definitions), stdout=StringIO())
    assert str(error.value) == "1 invalid definition(s), nothing imported:\nreport: waits_for: no job is named 'lod'"
    assert not Job.objects.exists() and not JobDependency.objects.exists()


def test_it_refuses_a_circle_and_writes_nothing(tmp_path):
    definitions = [
        {"name": "extract", **HOURLY, "waits_for": ["report"]},
        {"name": "load", **HOURLY, "waits_for": ["extract"]},
        {"name": "report", **HOURLY, "waits_for": ["load"]},
    ]
    with pytest.raises(CommandError) as error:
        call_command("import_jobs", write(tmp_path, definitions), stdout=StringIO())
    assert "nothing imported" in str(error.value)
    assert "already waits, directly or not, for this one" in str(error.value)
    assert not Job.objects.exists() and not JobDependency.objects.exists()


def test_it_refuses_an_operator_group_the_database_does_not_have(tmp_path):
    definitions = [{"name": "report", **HOURLY, "operator_groups": ["billing-ops"]}]
    with pytest.raises(CommandError) as error:
        call_command("import_jobs", write(tmp_path, definitions), stdout=StringIO())
    assert "report: operator_groups: no group is named 'billing-ops'" in str(error.value)
    assert not Job.objects.exists() and not Group.objects.exists()


def _file(tmp_path, **parts) -> str:
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps({"jobs": [], **parts}))
    return str(path)


CHRISTMAS = {"name": "christmas", "kind": "yearly", "starts_on": "2026-12-25", "ends_on": "2026-12-26"}


def test_it_creates_a_blackout_window_and_leaves_one_that_exists_as_it_is(tmp_path, make_job):
    make_job("report")
    call_command(
        "import_jobs", _file(tmp_path, blackout_windows=[{**CHRISTMAS, "jobs": ["report"]}]), stdout=StringIO()
    )
    window = BlackoutWindow.objects.get()
    assert (window.starts_on, window.starts_at, list(window.jobs.values_list("name", flat=True))) == (
        date(2000, 12, 25),  # a yearly window's dates are kept in one leap year
        time(0),
        ["report"],
    )
    entry = AuditEntry.objects.get(object_type="blackoutwindow", action="create")
    assert (entry.actor_label, entry.changes["jobs"]) == ("system", [[], ["report"]])
    out = StringIO()

    moved = {**CHRISTMAS, "starts_at": "18:00", "reason": "Office closed"}
    call_command("import_jobs", _file(tmp_path, blackout_windows=[moved]), stdout=out)

    assert "0 blackout window(s) created, 1 already existed" in out.getvalue()
    window = BlackoutWindow.objects.get()
    assert (window.starts_at, window.reason, window.jobs.count()) == (time(0), "", 1)


@pytest.mark.parametrize(
    ("window", "shown"),
    [
        ({**CHRISTMAS, "jobs": ["nobody"]}, "blackout window christmas: jobs: No job is named nobody."),
        ({**CHRISTMAS, "kind": "once", "ends_on": "2026-12-24"}, "must end after it starts"),
        ({**CHRISTMAS, "starts_on": 20261225}, "blackout window christmas: starts_on must be text"),
        ({**CHRISTMAS, "starts_on": "Christmas"}, "starts_on: Enter a valid date."),
        ({**CHRISTMAS, "holds": "everything"}, "holds: unknown field"),
    ],
)
def test_it_refuses_a_blackout_window_the_admin_would_refuse_and_writes_nothing(tmp_path, window, shown):
    jobs = [{"name": "report", **HOURLY}]
    with pytest.raises(CommandError) as error:
        call_command("import_jobs", _file(tmp_path, jobs=jobs, blackout_windows=[window]), stdout=StringIO())
    assert "nothing imported" in str(error.value) and shown in str(error.value)
    assert not BlackoutWindow.objects.exists() and not Job.objects.exists()
