"""manage.py import_jobs: many jobs from a file, each with its beat entry and its first slot."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from jobs.models import Job, JobRun
from jobs.scheduling.firing import due_jobs_fire

pytestmark = pytest.mark.django_db


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
