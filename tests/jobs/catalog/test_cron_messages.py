"""A bad cron gets its own message, naming the field and the allowed values, wherever a job is
written: the admin's job form (a new job and an edit), import_jobs and beat's crontab admin."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict

from jobs.models import Job
from tests.jobs.conftest import job_form_data

pytestmark = pytest.mark.django_db

BAD = "61 25 * * *"
MESSAGE = "minute 61 is outside 0-59; hour 25 is outside 0-23"


def test_it_says_what_is_wrong_with_a_new_jobs_cron(staff_client, make_job):
    template = make_job("template")
    data = job_form_data(template, name="nightly", cron_expression=BAD)

    page = staff_client.post("/admin/jobs/job/add/", data).content.decode()

    assert MESSAGE in page
    assert "not both" not in page
    assert not Job.objects.filter(name="nightly").exists()


def test_it_says_what_is_wrong_with_an_edited_cron_and_keeps_the_old_one(staff_client, make_job):
    job = make_job("nightly", cron_expression="0 3 * * *")

    page = staff_client.post(f"/admin/jobs/job/{job.pk}/change/", job_form_data(job, cron_expression=BAD))

    assert MESSAGE in page.content.decode() and "not both" not in page.content.decode()
    job.refresh_from_db()
    assert job.cron_expression == "0 3 * * *"


def test_it_says_the_same_in_an_import(tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text(json.dumps({"name": "nightly", "command": "test_job", "cron_expression": BAD}))

    with pytest.raises(CommandError) as error:
        call_command("import_jobs", str(path))

    assert MESSAGE in str(error.value) and "not both" not in str(error.value)


def test_it_says_the_same_on_beats_crontab_page(staff_client, make_job):
    job = make_job("nightly", cron_expression="0 3 * * *")
    crontab = job.periodic_task.crontab
    data = {**model_to_dict(crontab), "minute": "61", "hour": "25", "timezone": "UTC"}

    page = staff_client.post(f"/admin/django_celery_beat/crontabschedule/{crontab.pk}/change/", data)

    assert MESSAGE in page.content.decode()
    crontab.refresh_from_db()
    assert (crontab.minute, crontab.hour) == ("0", "3")
