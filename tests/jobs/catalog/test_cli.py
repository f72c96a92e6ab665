import contextlib
import io
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import call_command

from jobs.models import JobRun

pytestmark = pytest.mark.django_db


def runjob(*args):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("runjob", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


def test_it_exits_0_and_prints_the_run_and_summary(make_job):
    make_job("test-job")
    code, out, _ = runjob("test-job", "--as-of", "2025-02-01", "--dry-run")
    run = JobRun.objects.get()
    assert code == 0
    assert f"run #{run.pk} succeeded" in out
    assert json.loads(out.strip().splitlines()[-1]) == {
        "ok": True,
        "as_of": "2025-02-01T00:00:00+00:00",
        "dry_run": True,
    }
    assert run.triggered_by == JobRun.Trigger.CLI


def test_it_runs_a_paused_job_by_hand(make_job):
    make_job("paused-job", enabled=False)
    code, out, _ = runjob("paused-job")
    assert code == 0 and JobRun.objects.get().status == JobRun.Status.SUCCEEDED


def test_it_exits_1_when_the_job_fails(make_job):
    make_job("test-fail-job", command="test_fail_job")
    code, _, err = runjob("test-fail-job")
    assert code == 1
    assert "failed on purpose" in err


def test_it_exits_75_when_a_run_is_already_active(make_job):
    job = make_job("busy")
    active = JobRun.objects.create(job=job, triggered_by=JobRun.Trigger.SCHEDULE, status=JobRun.Status.RUNNING)
    code, out, _ = runjob("busy")
    assert code == 75
    assert f"run #{active.pk} is running" in out
    assert JobRun.objects.filter(status=JobRun.Status.SKIPPED).count() == 1


def test_it_names_an_unknown_job():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No job named 'nope'"):
        call_command("runjob", "nope")


def test_it_lists_jobs_with_schedule_in_words_and_next_run(make_job):
    make_job("nightly", cron_expression="0 3 * * *")
    make_job("off", cron_expression="0 3 * * *", enabled=False)
    out = io.StringIO()
    call_command("jobs", stdout=out)
    text = out.getvalue()
    assert "nightly" in text and "At 03:00" in text and "idle" in text
    assert "paused" in text


def test_it_shows_a_json_summary_as_the_last_line_of_a_job_command():
    out = io.StringIO()
    call_command("test_sleep_job", "--seconds", "0.01", stdout=out)
    assert json.loads(out.getvalue().strip().splitlines()[-1]) == {"slept_seconds": 0.01}


@pytest.mark.parametrize(
    "env",
    [
        {"CRONHOUSE_MODE": "production", "DEBUG": "true", "SECRET_KEY": "x" * 60},
        {"CRONHOUSE_MODE": "production", "DEBUG": "false", "SECRET_KEY": "change-me"},
        {"CRONHOUSE_MODE": "production", "DEBUG": "false"},
    ],
)
def test_it_refuses_to_start_production_with_debug_or_a_placeholder_secret(env, tmp_path):
    full_env = {**os.environ, "CRONHOUSE_VAR_DIR": str(tmp_path), **env}
    full_env.pop("SECRET_KEY", None) if "SECRET_KEY" not in env else None
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, env=full_env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "x" * 60 not in result.stderr


def runjob_from_command_line(*args) -> tuple[int, str]:
    """``manage.py runjob ...`` as a shell runs it (Django's own command-line entry), in this process."""
    from django.core.management import ManagementUtility

    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_, contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        ManagementUtility(["manage.py", "runjob", *args]).execute()
    return exit_.value.code, err.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["nightly", "--as-of", "2026-13-01"],
            "manage.py runjob: error: argument --as-of: '2026-13-01': expected a date",
        ),
        (["nightly", "--as-of", "2026-02-30T10:00"], "manage.py runjob: error: argument --as-of: '2026-02-30T10:00'"),
        (["nightly", "--bogus"], "manage.py runjob: error: nightly: unrecognized arguments: --bogus"),
        (["--bogus", "nightly"], "manage.py runjob: error: unrecognized arguments: --bogus"),
    ],
)
def test_it_exits_2_with_one_line_on_bad_input(make_job, args, message):
    make_job("nightly")
    code, err = runjob_from_command_line(*args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith(message), err
    assert not JobRun.objects.exists()


def test_it_exits_2_for_an_unknown_job():
    from django.core.management.base import CommandError

    # From a shell, Django prints a CommandError as the one line "CommandError: <message>" and
    # exits with its returncode (the in-process run_from_argv would close the test database).
    with pytest.raises(CommandError) as error:
        call_command("runjob", "nope")
    assert error.value.returncode == 2 and len(str(error.value).splitlines()) == 1


def test_it_exits_2_with_one_line_for_an_impossible_date_in_a_real_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "runjob", "nightly", "--as-of", "2026-13-01"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "CRONHOUSE_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "manage.py runjob: error: argument --as-of: '2026-13-01': expected a date (2025-02-01) or an ISO datetime."
    ]


def test_it_passes_a_jobs_own_options_to_its_command(make_job):
    make_job("nap", command="test_sleep_job")
    code, out, _ = runjob("nap", "--seconds", "0.01", "--dry-run")
    run = JobRun.objects.get()
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1]) == {"slept_seconds": 0.01, "dry_run": True}
    assert run.options == {"args": ["--seconds", "0.01"], "dry_run": True}


def test_it_runs_generate_charges_with_its_batch_size_from_the_command_line(make_job):
    make_job("generate-charges", command="generate_charges", cron_expression="0 6 1 * *")
    code, out, err = runjob("generate-charges", "--batch-size", "10")
    assert code == 0, err
    run = JobRun.objects.get()
    assert run.status == JobRun.Status.SUCCEEDED and run.options == {"args": ["--batch-size", "10"]}


def test_it_exits_2_with_one_line_when_the_jobs_command_refuses_an_option(make_job):
    make_job("generate-charges", command="generate_charges", cron_expression="0 6 1 * *")
    code, err = runjob_from_command_line("generate-charges", "--batch-size", "ten")
    assert code == 2
    assert err.strip().splitlines() == [
        "manage.py runjob: error: generate-charges: argument --batch-size: invalid int value: 'ten'"
    ]
    assert not JobRun.objects.exists()


def test_it_refuses_a_demo_for_an_app_that_has_none():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="No demo for nope: apps with one are .*billing"):
        call_command("seed_demo", apps=["nope"])
