"""manage.py export_jobs writes what import_jobs reads: export, import into an empty database,
export again gives the same file; secrets travel as the names of environment variables only."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from core.crypto import secret_decrypt
from jobs.forms import WebhookHandlerAdminForm
from jobs.models import Job, WebhookHandler

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
