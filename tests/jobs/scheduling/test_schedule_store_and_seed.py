import json

import pytest
from django.core.exceptions import ValidationError
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from jobs.catalog.definitions import JobDefinition
from jobs.catalog.seeding import job_seed
from jobs.models import Job
from jobs.scheduling.schedules import RUN_TASK

pytestmark = pytest.mark.django_db


def test_it_creates_a_periodic_task_with_the_jobs_cron_and_timezone(make_job):
    job = make_job(cron_expression="0 9 * * 1-5", timezone="America/New_York")
    task = PeriodicTask.objects.get(pk=job.periodic_task_id)
    assert task.task == RUN_TASK
    assert json.loads(task.kwargs) == {"job_id": job.pk}
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("0", "9", "1-5")
    assert str(crontab.timezone) == "America/New_York"
    assert task.enabled


def test_it_updates_the_same_periodic_task_when_the_schedule_changes(make_job):
    job = make_job(cron_expression="0 9 * * *")
    task_id = job.periodic_task_id
    before = PeriodicTasks.last_change()
    job.cron_expression = ""
    job.interval_seconds = 30
    job.save()
    task = PeriodicTask.objects.get(pk=task_id)  # upserted, not recreated (keeps last_run_at)
    assert task.crontab is None and task.interval.every == 30
    assert PeriodicTasks.last_change() > before  # beat notices


def test_it_disables_and_enables_the_periodic_task_with_the_job(make_job):
    job = make_job()
    job.enabled = False
    job.save()
    assert not PeriodicTask.objects.get(pk=job.periodic_task_id).enabled
    before = PeriodicTasks.last_change()
    job.enabled = True
    job.save()
    assert PeriodicTask.objects.get(pk=job.periodic_task_id).enabled
    assert PeriodicTasks.last_change() > before


def test_it_deletes_the_periodic_task_with_the_job(make_job):
    job = make_job()
    task_id = job.periodic_task_id
    job.delete()
    assert not PeriodicTask.objects.filter(pk=task_id).exists()


def test_it_rejects_an_invalid_cron_naming_the_field():
    job = Job(name="bad", command="test_job", cron_expression="61 * * * *")
    with pytest.raises(ValidationError) as error:
        job.full_clean()
    assert "cron_expression" in error.value.message_dict


def test_it_rejects_a_job_with_both_cron_and_interval():
    job = Job(name="both", command="test_job", cron_expression="* * * * *", interval_seconds=10)
    with pytest.raises(ValidationError) as error:
        job.full_clean()
    assert "cron_expression" in error.value.message_dict


DEFINITION = JobDefinition(name="nightly", command="test_job", cron_expression="0 3 * * *", description="Nightly.")


def test_it_seeds_idempotently():
    assert job_seed(definition=DEFINITION) == "created"
    assert job_seed(definition=DEFINITION) == "unchanged"
    assert Job.objects.filter(name="nightly").count() == 1
    assert PeriodicTask.objects.filter(task=RUN_TASK).count() == 1


def test_it_never_overwrites_what_an_admin_tuned_but_updates_untouched_defaults():
    job_seed(definition=DEFINITION)
    tuned = Job.objects.get(name="nightly")  # the admin's edit: the schedule is no column to update()
    tuned.cron_expression, tuned.enabled = "15 4 * * *", False
    tuned.save()
    newer = JobDefinition(
        name="nightly",
        command="test_job",
        cron_expression="0 5 * * *",
        description="Nightly, improved.",
        timeout_seconds=120,
    )
    assert job_seed(definition=newer) == "updated"
    job = Job.objects.get(name="nightly")
    assert job.cron_expression == "15 4 * * *" and job.enabled is False  # the admin's choices
    assert job.description == "Nightly, improved." and job.timeout_seconds == 120  # untouched defaults


def test_it_seeds_the_shipped_jobs_and_fixtures_on_request():
    from django.core.management import call_command

    call_command("seed_jobs", verbosity=0)
    assert set(Job.objects.values_list("name", flat=True)) >= {"process-jobs", "cleanup-sessions"}
    assert not Job.objects.filter(name="test-job").exists()
    call_command("seed_jobs", with_fixtures=True, verbosity=0)
    assert Job.objects.get(name="test-sleep-job").config == {"seconds": 5}
