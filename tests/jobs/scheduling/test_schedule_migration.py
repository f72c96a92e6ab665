"""Moving a job's schedule into its django-celery-beat rows keeps every job's schedule: a task is
built from the job's old columns where it was missing or said something else."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("jobs", "0019_jobrun_backfill")]


def migrate(targets) -> object:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def test_it_builds_every_jobs_task_from_its_old_columns():
    old = migrate(BEFORE)
    try:
        Job = old.get_model("jobs", "Job")
        PeriodicTask = old.get_model("django_celery_beat", "PeriodicTask")
        CrontabSchedule = old.get_model("django_celery_beat", "CrontabSchedule")
        Job.objects.create(name="no-task", command="test_job", cron_expression="0 9 * * 5-7", timezone="Europe/Paris")
        Job.objects.create(name="every-30-s", command="test_job", cron_expression="", interval_seconds=30)
        stale_row = CrontabSchedule.objects.create(minute="0", hour="1", timezone="UTC")
        stale = PeriodicTask.objects.create(name="cronhouse:stale", task="jobs.tasks.trigger_scheduled_job")
        stale.crontab = stale_row
        stale.save()
        Job.objects.create(name="stale", command="test_job", cron_expression="0 2 * * *", periodic_task=stale)
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    from jobs.models import Job as CurrentJob

    jobs = {job.name: job for job in CurrentJob.objects.all()}
    assert (jobs["no-task"].cron_expression, jobs["no-task"].timezone) == ("0 9 * * 0,5,6", "Europe/Paris")
    assert jobs["every-30-s"].interval_seconds == 30
    assert jobs["stale"].cron_expression == "0 2 * * *" and jobs["stale"].periodic_task_id == stale.pk
    assert all(job.periodic_task.task == "jobs.tasks.trigger_scheduled_job" for job in jobs.values())
