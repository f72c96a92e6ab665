"""Reading a job's schedule from its django-celery-beat rows (its ``PeriodicTask`` with the
``CrontabSchedule`` or ``IntervalSchedule``): the one store of a schedule. Below the models, which
read it through ``Job.cron_expression`` and friends; writing is ``jobs.scheduling.schedules``."""

from __future__ import annotations

from dataclasses import dataclass

from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

RUN_TASK = "jobs.tasks.trigger_scheduled_job"
PERIODIC_TASK_PREFIX = "cronhouse:"
CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
# What a job reads from its task's rows: fetch them with the job, never one query per job.
SCHEDULE_ROWS = ("periodic_task__crontab", "periodic_task__interval")
PERIOD_SECONDS = {
    IntervalSchedule.DAYS: 86400,
    IntervalSchedule.HOURS: 3600,
    IntervalSchedule.MINUTES: 60,
    IntervalSchedule.SECONDS: 1,
    IntervalSchedule.MICROSECONDS: 0,  # below a second: no Debian-cron job runs that often
}


@dataclass(frozen=True)
class Schedule:
    """A job's schedule as the engine reads it."""

    cron_expression: str = ""
    timezone: str = "UTC"
    interval_seconds: int | None = None


def crontab_expression(row: CrontabSchedule) -> str:
    return " ".join(str(getattr(row, field)) for field in CRONTAB_FIELDS)


def interval_seconds(row: IntervalSchedule) -> int:
    return row.every * PERIOD_SECONDS.get(row.period, 1)


def task_schedule(task: PeriodicTask | None) -> Schedule:
    """The schedule a job's task holds (an empty one for no task, or a solar / clocked row)."""
    if task is None:
        return Schedule()
    if task.crontab_id:
        return Schedule(crontab_expression(task.crontab), str(task.crontab.timezone), None)
    if task.interval_id:
        return Schedule("", "UTC", interval_seconds(task.interval))
    return Schedule()
