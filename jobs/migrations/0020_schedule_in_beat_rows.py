"""A job's schedule moves into its django-celery-beat rows (jobs.scheduling.schedules), step 1:
every job's PeriodicTask is made to hold the job's schedule, built from the job's columns where it
is missing or differs (a task created, a crontab / interval row found or created; a row other
jobs share is never changed; day-of-week 7 is stored as 0). Step 2, 0021, drops the columns."""

import json
from datetime import datetime

from celery.schedules import crontab_parser
from cronsim import CronSim, CronSimError
from django.db import migrations

CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def _day_of_week(field):
    try:
        crontab_parser(7).parse(field)
        return field
    except ValueError:
        pass
    try:
        days = CronSim(f"0 0 * * {field}", datetime(2000, 1, 1)).weekdays
    except CronSimError:
        return field
    return ",".join(str(day) for day in sorted({day % 7 for day in days if isinstance(day, int)}))


def _row(apps, job, known):
    if job.interval_seconds:
        model, fields = (
            apps.get_model("django_celery_beat", "IntervalSchedule"),
            {
                "every": job.interval_seconds,
                "period": "seconds",
            },
        )
    else:
        values = job.cron_expression.split()
        values[4] = _day_of_week(values[4])
        model = apps.get_model("django_celery_beat", "CrontabSchedule")
        fields = dict(zip(CRONTAB_FIELDS, values, strict=False), timezone=job.timezone)
    key = (model.__name__, *map(str, fields.values()))
    if key not in known:
        known[key] = model.objects.filter(**fields).order_by("pk").first() or model.objects.create(**fields)
    return known[key]


def schedules_into_tasks(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    known = {}
    changed = False
    for job in Job.objects.select_related("periodic_task").iterator(chunk_size=2000):
        if not (job.cron_expression or job.interval_seconds):
            continue
        row = _row(apps, job, known)
        is_crontab = row._meta.model_name == "crontabschedule"
        task = job.periodic_task or PeriodicTask.objects.filter(name=f"cronhouse:{job.name}").first()
        if task is None:
            task = PeriodicTask(
                name=f"cronhouse:{job.name}",
                task="jobs.tasks.trigger_scheduled_job",
                kwargs=json.dumps({"job_id": job.pk}),
                description=f"The schedule of Cronhouse job {job.name}.",
            )
        elif (task.crontab_id, task.interval_id) == ((row.pk, None) if is_crontab else (None, row.pk)) and (
            task.enabled == job.enabled and not (task.solar_id or task.clocked_id)
        ):
            continue
        task.crontab, task.interval = (row, None) if is_crontab else (None, row)
        task.solar = task.clocked = None
        task.enabled = job.enabled
        task.save()
        if job.periodic_task_id != task.pk:
            Job.objects.filter(pk=job.pk).update(periodic_task=task)
        changed = True
    if changed:
        PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": datetime.now().astimezone()})


class Migration(migrations.Migration):
    # The columns go in 0021: PostgreSQL alters no table with row changes of this transaction
    # still to check (deferred foreign keys).
    dependencies = [
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("jobs", "0019_jobrun_backfill"),
    ]

    operations = [
        migrations.RunPython(schedules_into_tasks, migrations.RunPython.noop, elidable=False),
    ]
