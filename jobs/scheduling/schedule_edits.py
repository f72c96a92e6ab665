"""Edits of a job's schedule made on django-celery-beat's rows directly (its admin, a shell).

The receivers here are connected in ``JobsConfig.ready()`` (see ``jobs.scheduling.schedules``
for what they guarantee). ``row_errors`` is the engine's verdict on a row, keyed by the row's
own field names, which the admin forms show beside the field.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from jobs.models import Job
from jobs.models.versions import job_versions_record
from jobs.scheduling.cron import cron_syntax_error, schedule_errors
from jobs.scheduling.schedules import (
    CRONTAB_FIELDS,
    SCHEDULE_ROWS,
    beat_day_of_week,
    interval_seconds,
    job_schedule_set,
    jobs_schedule_move,
    task_enabled_sync,
)

# The values of each row that make a job's schedule (or, for a task, its enabled flag).
TRACKED = {
    CrontabSchedule: (*CRONTAB_FIELDS, "timezone"),
    IntervalSchedule: ("every", "period"),
    PeriodicTask: ("crontab_id", "interval_id", "solar_id", "clocked_id", "enabled"),
}
VERSION_BATCH = 1000
SOLAR_OR_CLOCKED = (
    "A job's schedule is a crontab or an interval (Debian cron has no sunrise or one-off times): "
    "choose one of those, or make a task of your own for this schedule."
)


def row_jobs(row) -> QuerySet[Job]:
    """The jobs whose schedule ``row`` holds."""
    if isinstance(row, CrontabSchedule):
        return Job.objects.filter(periodic_task__crontab=row)
    if isinstance(row, IntervalSchedule):
        return Job.objects.filter(periodic_task__interval=row)
    return Job.objects.filter(periodic_task=row)


def row_errors(row) -> dict[str, str]:
    """Why ``row`` (with its unsaved values) cannot be a job's schedule, keyed by its fields."""
    if isinstance(row, CrontabSchedule):
        return _crontab_errors(row)
    if isinstance(row, IntervalSchedule):
        errors = schedule_errors("", "UTC", interval_seconds(row) or None)
        return {"every": " ".join(errors.values())} if errors else {}
    if row.solar_id or row.clocked_id:
        return {"solar" if row.solar_id else "clocked": SOLAR_OR_CLOCKED}
    if bool(row.crontab_id) == bool(row.interval_id):
        return {"crontab": "A job's task needs exactly one schedule: a crontab or an interval."}
    schedule = row.crontab if row.crontab_id else row.interval
    if errors := row_errors(schedule):
        field = "crontab" if row.crontab_id else "interval"
        return {field: f"{schedule}: {' '.join(errors.values())}"}
    return {}


def _crontab_errors(row: CrontabSchedule) -> dict[str, str]:
    values = [str(getattr(row, field)) for field in CRONTAB_FIELDS]
    errors = schedule_errors(" ".join(values), str(row.timezone), None)
    if message := errors.pop("cron_expression", None):
        errors[_field_at_fault(values)] = message
    return errors


def _field_at_fault(values: list[str]) -> str:
    """The crontab field a refused expression is refused for: the first whose own syntax is
    wrong, else the days (an expression of valid fields that never fires: 31 February)."""
    for index, field in enumerate(CRONTAB_FIELDS):
        alone = ["*"] * 5
        alone[index] = values[index]
        if cron_syntax_error(" ".join(alone)):
            return field
    return "day_of_month"


def _tracked(row) -> dict:
    return {name: getattr(row, name) for name in TRACKED[type(row)]}


def _stored(row) -> dict | None:
    if row.pk is None:
        return None
    return type(row).objects.filter(pk=row.pk).values(*TRACKED[type(row)]).first()


def schedule_row_checking(sender, instance, raw: bool = False, **kwargs) -> None:
    """pre_save: a changed row that a job's schedule uses passes the engine's checks, or the
    save raises ValidationError and nothing is written."""
    if raw:
        return
    if isinstance(instance, CrontabSchedule):
        instance.day_of_week = beat_day_of_week(str(instance.day_of_week))
    before = _stored(instance)
    instance._schedule_before = before
    if before is None or _comparable(before) == _comparable(_tracked(instance)):
        return
    if row_jobs(instance).exists() and (errors := row_errors(instance)):
        raise ValidationError(errors)


def _comparable(values: dict) -> dict:
    return {name: str(value) for name, value in values.items()}


def schedule_row_saved(sender, instance, created: bool = False, raw: bool = False, **kwargs) -> None:
    """post_save: every job whose schedule the row holds moves to its new next slot; a job's
    task's enabled flag is the job's."""
    before = instance.__dict__.pop("_schedule_before", None)
    set_by_service = instance.__dict__.pop("_schedule_set_by_service", False)
    if raw or created or before is None or set_by_service:
        return
    now_values = _tracked(instance)
    if _comparable(before) == _comparable(now_values):
        return
    jobs = row_jobs(instance)
    if isinstance(instance, PeriodicTask) and before["enabled"] != instance.enabled:
        resumed = Job.NOT_PAUSED if instance.enabled else {"late_since": None}
        jobs.exclude(enabled=instance.enabled).update(enabled=instance.enabled, **resumed)
    jobs_schedule_move(jobs)
    _versions_record(jobs)


def _versions_record(jobs: QuerySet[Job]) -> None:
    """Each job whose schedule the row holds gets a version of its new schedule, a thousand at a time."""
    batch = []
    for job in jobs.select_related("webhook_handler", *SCHEDULE_ROWS).iterator(chunk_size=VERSION_BATCH):
        batch.append(job)
        if len(batch) == VERSION_BATCH:
            job_versions_record(batch)
            batch = []
    if batch:
        job_versions_record(batch)


def job_deleted(sender, instance: Job, **kwargs) -> None:
    """post_delete: a job's task goes with it (a task no job owns is an ordinary beat row)."""
    if instance.periodic_task_id:
        PeriodicTask.objects.filter(pk=instance.periodic_task_id).delete()
        PeriodicTasks.update_changed()


def job_saved(sender, instance: Job, raw: bool = False, **kwargs) -> None:
    """A job saved with a new schedule staged (``Job.cron_expression = ...``) has it written by the
    one writer; a job toggled has its task's flag follow. Runs inside ``Job.save``'s transaction."""
    pending, changed = instance.__dict__.pop("_schedule_write", (None, False))
    if raw:
        return
    if pending is not None:
        job_schedule_set(job=instance, **pending)  # its slot and task's flag, enabled included
    elif changed:
        task_enabled_sync(instance)
