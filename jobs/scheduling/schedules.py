"""A job's schedule, stored once: in django-celery-beat's rows.

A job owns one ``PeriodicTask`` (``Job.periodic_task``); its ``CrontabSchedule`` (timezone
included) or ``IntervalSchedule`` is the job's schedule. The job row keeps only what the engine
(``jobs.scheduling.cron``) derives from it: ``next_fire_at`` and ``late_at``.

One service writes a job's schedule: ``job_schedule_set`` (the job form, seed_jobs and
``Job.save()`` of an assigned ``cron_expression`` / ``interval_seconds`` / ``timezone`` call it;
``jobs_schedules_create_many`` is its batch form for import_jobs). Both run the engine's checks
(``schedule_errors``), take the crontab or interval row that holds the schedule (created when
none does; a job never changes a row that other jobs may share) and move the job's next slot at
once.

The rows stay editable where django-celery-beat puts them (its admin, a shell). The receivers
below, connected in ``JobsConfig.ready()``, make such an edit the job's schedule too:

* before a ``.save()`` of a ``PeriodicTask`` a job owns, or of a crontab / interval row a job's
  task uses, the same checks run; an edit that fails them raises ``ValidationError`` and changes
  nothing;
* after it, ``next_fire_at`` / ``late_at`` of every job using the row move at once, in one UPDATE
  per distinct (schedule, grace). A crontab row shared by many jobs' tasks is one schedule in
  django-celery-beat's meaning: editing it moves every job that uses it.

``QuerySet.update()`` sends no signals: after one on these rows, call ``jobs_schedule_move`` for
the jobs concerned (and ``PeriodicTasks.update_changed()``, as django-celery-beat documents for
its own bulk updates), or the jobs keep their old next slot.

Day-of-week 7: Debian's cron reads 7 as Sunday; Celery's crontab (and so django-celery-beat's
row) cannot hold it. The service stores the same days with 0 for Sunday (``5-7`` is stored as
``0,5,6``), and every page shows the stored form. A crontab saved with a 7 elsewhere is
normalised the same way before it is written.

Solar and clocked schedules have no answer in Debian's cron: a job's task with one is refused.
"""

from __future__ import annotations

import json
from datetime import datetime

from celery.schedules import crontab_parser
from cronsim import CronSim, CronSimError
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.timezone import now as current_time
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from jobs.models import Job
from jobs.scheduling.beat_rows import (  # noqa: F401  (SCHEDULE_ROWS and RUN_TASK: read here by their users)
    CRONTAB_FIELDS,
    PERIOD_SECONDS,
    PERIODIC_TASK_PREFIX,
    RUN_TASK,
    SCHEDULE_ROWS,
    Schedule,
    crontab_expression,
    interval_seconds,
    task_schedule,
)
from jobs.scheduling.cron import next_fire, schedule_errors


def periodic_task_name(job: Job) -> str:
    return f"{PERIODIC_TASK_PREFIX}{job.name}"


def beat_day_of_week(field: str) -> str:
    """The day-of-week field as Celery's crontab can hold it: the same days, 0 for Sunday
    (module docstring). A field Celery reads already is kept as written."""
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


def schedule_validate(schedule: Schedule) -> Schedule:
    """``schedule`` with its expression in the form it is stored in, or ValidationError keyed by
    field (the engine's checks, ``jobs.scheduling.cron.schedule_errors``)."""
    cron = " ".join(schedule.cron_expression.split())
    if errors := schedule_errors(cron, schedule.timezone, schedule.interval_seconds):
        raise ValidationError(errors)
    if cron:
        *head, day_of_week = cron.split()
        cron = " ".join([*head, beat_day_of_week(day_of_week)])
    return Schedule(cron, schedule.timezone if cron else "UTC", schedule.interval_seconds or None)


def schedule_row(schedule: Schedule, known: dict | None = None) -> CrontabSchedule | IntervalSchedule:
    """The crontab or interval row holding ``schedule`` (a validated one): the oldest such row,
    or a new one. ``known`` memoises rows across many jobs."""
    known = {} if known is None else known
    if schedule.interval_seconds:
        key = ("interval", schedule.interval_seconds)
        if key not in known:
            fields = {"every": schedule.interval_seconds, "period": IntervalSchedule.SECONDS}
            known[key] = _oldest_or_new(IntervalSchedule, fields)
        return known[key]
    fields = dict(zip(CRONTAB_FIELDS, schedule.cron_expression.split(), strict=True), timezone=schedule.timezone)
    key = ("crontab", *fields.values())
    if key not in known:
        known[key] = _oldest_or_new(CrontabSchedule, fields)
    return known[key]


def _oldest_or_new(model, fields: dict):
    # No unique constraint on beat's schedule tables: an admin may have made two equal rows.
    return model.objects.filter(**fields).order_by("pk").first() or model.objects.create(**fields)


def _task_point(task: PeriodicTask, row) -> None:
    is_interval = isinstance(row, IntervalSchedule)
    task.interval, task.crontab = (row, None) if is_interval else (None, row)
    task.solar = task.clocked = None


@transaction.atomic
def job_schedule_set(
    *,
    job: Job,
    cron_expression: str = "",
    timezone: str = "UTC",
    interval_seconds: int | None = None,
    now: datetime | None = None,
) -> Job:
    """Set a job's schedule (a saved job; ``Job.save()`` calls this for a new one):

    1. check it with the engine (ValidationError keyed by field, nothing changed);
    2. point the job's task at the crontab / interval row that holds it (creating the task, and
       the row when no row holds it yet; a row other jobs use is never changed);
    3. move the job's ``next_fire_at`` / ``late_at`` to the new schedule's first slot after ``now``.
    """
    schedule = schedule_validate(Schedule(cron_expression, timezone, interval_seconds))
    job.__dict__.pop("_schedule_pending", None)
    row = schedule_row(schedule)
    task = PeriodicTask.objects.filter(pk=job.periodic_task_id).first() if job.periodic_task_id else None
    existed = task is not None
    if task is None:
        # A task of this name that no job owns (its job deleted by SQL, a partial restore) is taken over.
        unowned = PeriodicTask.objects.filter(name=periodic_task_name(job), job__isnull=True).first()
        task = unowned or PeriodicTask(**_new_task_fields(job))
        task.task, task.kwargs = RUN_TASK, json.dumps({"job_id": job.pk})
    elif task_schedule(task) == schedule and task.enabled == job.enabled:
        job.periodic_task = task
        return job
    _task_point(task, row)
    task.enabled = job.enabled
    task._schedule_set_by_service = True  # the receivers leave the move to step 3
    task.save()  # .save() bumps PeriodicTasks.last_update, which beat watches
    job.periodic_task = task
    now = now or current_time()
    job.schedule_reset(now)
    fields = {"periodic_task": task, "next_fire_at": job.next_fire_at, "late_at": job.late_at}
    if existed:
        job.schedule_changed_at = fields["schedule_changed_at"] = now
    Job.objects.filter(pk=job.pk).update(**fields)
    return job


def _new_task_fields(job: Job) -> dict:
    return {
        "name": periodic_task_name(job),
        "task": RUN_TASK,
        "kwargs": json.dumps({"job_id": job.pk}),
        "enabled": job.enabled,
        "description": f"The schedule of Cronhouse job {job.name}.",
    }


@transaction.atomic
def jobs_schedules_create_many(jobs: list[Job], schedules: list[Schedule]) -> None:
    """``job_schedule_set`` for many new jobs (saved, without a task yet) in a few statements:
    the rows that hold their schedules, their tasks, and the link from each job to its task."""
    known = _known_rows()
    tasks = []
    for job, schedule in zip(jobs, schedules, strict=True):
        task = PeriodicTask(**_new_task_fields(job))
        _task_point(task, schedule_row(schedule_validate(schedule), known))
        tasks.append(task)
    PeriodicTask.objects.bulk_create(tasks)
    # Each job to its task, by the task's unique name: one UPDATE for the batch.
    own_task = PeriodicTask.objects.filter(name=Concat(Value(PERIODIC_TASK_PREFIX), OuterRef("name")))
    Job.objects.filter(pk__in=[job.pk for job in jobs]).update(periodic_task=Subquery(own_task.values("pk")[:1]))
    by_name = dict(PeriodicTask.objects.filter(name__in=[t.name for t in tasks]).values_list("name", "pk"))
    for job in jobs:
        job.periodic_task_id = by_name[periodic_task_name(job)]
        job.__dict__.pop("_schedule_pending", None)
    PeriodicTasks.update_changed()


def _known_rows() -> dict:
    """Every crontab and interval row, keyed as ``schedule_row`` memoises them: a batch then
    creates only the rows no job used before, instead of one lookup per job."""
    known: dict = {}
    for row in CrontabSchedule.objects.order_by("-pk"):
        known["crontab", *(getattr(row, field) for field in CRONTAB_FIELDS), str(row.timezone)] = row
    for row in IntervalSchedule.objects.filter(period=IntervalSchedule.SECONDS).order_by("-pk"):
        known["interval", row.every] = row
    return known


def jobs_schedule_move(jobs: QuerySet[Job], *, now: datetime | None = None) -> int:
    """Move ``jobs`` to the first slot after ``now`` of the schedule their task's rows hold:
    one UPDATE per distinct (crontab, interval, grace), however many jobs share it. Returns how
    many jobs moved."""
    now = now or timezone.now()
    moved = jobs.filter(enabled=False).update(next_fire_at=None, late_at=None, schedule_changed_at=now)
    enabled = jobs.filter(enabled=True)
    groups = list(enabled.values_list("periodic_task__crontab", "periodic_task__interval", "grace_seconds").distinct())
    crontabs = CrontabSchedule.objects.in_bulk({crontab for crontab, _, _ in groups if crontab})
    intervals = IntervalSchedule.objects.in_bulk({interval for _, interval, _ in groups if interval})
    for crontab, interval, grace in groups:
        if crontab:
            schedule = Schedule(crontab_expression(crontabs[crontab]), str(crontabs[crontab].timezone), None)
        else:
            schedule = Schedule("", "UTC", interval_seconds(intervals[interval]) if interval else None)
        upcoming = next_fire(schedule.cron_expression, schedule.interval_seconds, schedule.timezone, now, grace)
        group = enabled.filter(periodic_task__crontab=crontab, periodic_task__interval=interval, grace_seconds=grace)
        moved += group.update(next_fire_at=upcoming.at, late_at=upcoming.late_at, schedule_changed_at=now)
    return moved


@transaction.atomic
def task_enabled_sync(job: Job) -> None:
    """The task's enabled flag follows its job's (Job.save() after a toggle)."""
    disagreeing = PeriodicTask.objects.filter(pk=job.periodic_task_id).exclude(enabled=job.enabled)
    if job.periodic_task_id and disagreeing.update(enabled=job.enabled):
        PeriodicTasks.update_changed()
