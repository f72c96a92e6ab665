"""Keep each Job's django-celery-beat PeriodicTask in step with the Job row.

The Job is the source of truth. Its PeriodicTask is upserted (never deleted and recreated,
which would lose ``last_run_at``) on every save, and deleted with the job. Any
``QuerySet.update()`` on PeriodicTask must be followed by ``PeriodicTasks.update_changed()``
or a running beat will not notice it.
"""

from __future__ import annotations

import json
from datetime import datetime

from celery.schedules import crontab_parser
from cronsim import CronSim, CronSimError
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from jobs.models import Job

RUN_TASK = "jobs.tasks.trigger_scheduled_job"
PERIODIC_TASK_PREFIX = "cronhouse:"


def periodic_task_name(job: Job) -> str:
    return f"{PERIODIC_TASK_PREFIX}{job.name}"


def beat_day_of_week(field: str) -> str:
    """The day-of-week field as Celery's crontab row can hold it. Cron reads 7 as Sunday too
    (``5-7``); Celery's parser refuses it, and django-celery-beat would then drop the entry. Beat
    fires Cronhouse's jobs from ``Job.next_fire_at`` (``jobs.scheduling.firing``) anyway: the row only has
    to hold the same days for the admin."""
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


def periodic_task_fields(job: Job, schedules: dict | None = None) -> dict:
    """The PeriodicTask a job owns, as field values: schedule row, enabled flag, name and task
    arguments. ``schedules`` memoises the crontab / interval rows across many jobs."""
    schedules = {} if schedules is None else schedules
    if job.interval_seconds:
        key = ("interval", job.interval_seconds)
        if key not in schedules:
            schedules[key], _ = IntervalSchedule.objects.get_or_create(
                every=job.interval_seconds, period=IntervalSchedule.SECONDS
            )
        schedule = {"interval": schedules[key], "crontab": None}
    else:
        minute, hour, day_of_month, month_of_year, day_of_week = job.cron_expression.split()
        fields = dict(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=beat_day_of_week(day_of_week),
            timezone=job.timezone,
        )
        key = ("crontab", *fields.values())
        if key not in schedules:
            schedules[key], _ = CrontabSchedule.objects.get_or_create(**fields)
        schedule = {"crontab": schedules[key], "interval": None}
    return {
        "name": periodic_task_name(job),
        "task": RUN_TASK,
        "kwargs": json.dumps({"job_id": job.pk}),
        "enabled": job.enabled,
        "description": f"Cronhouse job {job.name} (managed: edit the Job, not this task)",
        **schedule,
    }


@transaction.atomic
def periodic_task_sync(*, job: Job) -> PeriodicTask:
    """Upsert the job's PeriodicTask: schedule, enabled flag, name and task arguments."""
    defaults = periodic_task_fields(job)
    task = PeriodicTask.objects.filter(pk=job.periodic_task_id).first() if job.periodic_task_id else None
    if task is None:
        task, _ = PeriodicTask.objects.update_or_create(name=defaults["name"], defaults=defaults)
    else:
        for field, value in defaults.items():
            setattr(task, field, value)
        task.save()  # .save() bumps PeriodicTasks.last_update, which beat watches
    if job.periodic_task_id != task.pk:
        Job.objects.filter(pk=job.pk).update(periodic_task=task)
        job.periodic_task_id = task.pk
    return task


@transaction.atomic
def jobs_set_enabled(*, job_ids: list[int], enabled: bool) -> int:
    """Enable or disable many jobs and their beat entries in one statement each."""
    now = timezone.now()
    jobs = list(Job.objects.filter(pk__in=job_ids).exclude(enabled=enabled))
    for job in jobs:
        job.enabled = enabled
        job.schedule_changed_at = now
        job.schedule_reset(now)  # as Job.save() does: slots before a re-enable are not owed
    Job.objects.bulk_update(jobs, ["enabled", "schedule_changed_at", "next_fire_at", "late_at"])
    changed = len(jobs)
    PeriodicTask.objects.filter(job__pk__in=job_ids).update(enabled=enabled)
    PeriodicTasks.update_changed()
    return changed


def orphan_periodic_tasks():
    """PeriodicTasks of the run task that no Job owns (left by a bulk delete or a bad restore)."""
    return PeriodicTask.objects.filter(task=RUN_TASK, job__isnull=True)


def job_saved(sender, instance: Job, raw: bool = False, **kwargs) -> None:
    if not raw:
        periodic_task_sync(job=instance)


def job_deleted(sender, instance: Job, **kwargs) -> None:
    if instance.periodic_task_id:
        PeriodicTask.objects.filter(pk=instance.periodic_task_id).delete()
    PeriodicTask.objects.filter(name=periodic_task_name(instance)).delete()
    PeriodicTasks.update_changed()
