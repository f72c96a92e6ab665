"""Create many jobs at once (``manage.py import_jobs``): a hundred thousand in seconds.

Saving jobs one by one syncs each one's PeriodicTask with its own queries. Here a batch is
validated as the admin form would (the model's validators and ``Job.clean``), then written with
a handful of statements: the jobs (with their first slot), their crontab / interval rows, their
PeriodicTasks, and the link between the two. django-celery-beat learns of the new tasks through
``PeriodicTasks.update_changed()``, as its documentation asks for bulk writes.
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from .models import Job
from .sync import PERIODIC_TASK_PREFIX, periodic_task_fields

BATCH = 5000


class JobDefinitionError(ValueError):
    """A definition that cannot become a job; the message names it and the field."""


def job_from_definition(definition: dict) -> Job:
    """A validated, unsaved Job from a dict of its fields (as the admin form would check it)."""
    unknown = set(definition) - {field.name for field in Job._meta.concrete_fields}
    name = definition.get("name", "?")
    if unknown:
        raise JobDefinitionError(f"{name}: unknown field(s) {', '.join(sorted(unknown))}")
    job = Job(**definition)
    try:
        # Constraints are the database's to enforce at insert (checking them here costs a query
        # each); Job.clean() already gives the readable reasons for the schedule and handler.
        # Fields the definition leaves out keep their defaults, which need no check.
        unset = [field.name for field in Job._meta.concrete_fields if field.name not in definition]
        job.full_clean(exclude=unset, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        reasons = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
        raise JobDefinitionError(f"{name}: {reasons}") from exc
    return job


def read_definitions(text: str) -> list[dict]:
    """A JSON array of job objects, or JSON Lines (one object per line)."""
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@transaction.atomic
def jobs_create_many(jobs: list[Job]) -> list[Job]:
    """Insert new jobs and their PeriodicTasks in a few statements; returns the jobs created
    (a name that already exists is left alone, as seed_jobs would leave it)."""
    names = [job.name for job in jobs]
    existing = set(Job.objects.filter(name__in=names).values_list("name", flat=True))
    jobs = [job for job in jobs if job.name not in existing]
    if not jobs:
        return []
    now = timezone.now()
    for job in jobs:
        job.schedule_reset(now)
    Job.objects.bulk_create(jobs)
    schedules = _known_schedules()
    tasks = [PeriodicTask(**periodic_task_fields(job, schedules)) for job in jobs]
    PeriodicTask.objects.bulk_create(tasks)
    # Each job to its task, by the task's unique name: one UPDATE for the batch.
    own_task = PeriodicTask.objects.filter(name=Concat(Value(PERIODIC_TASK_PREFIX), OuterRef("name")))
    Job.objects.filter(pk__in=[job.pk for job in jobs]).update(periodic_task=Subquery(own_task.values("pk")[:1]))
    PeriodicTasks.update_changed()
    return jobs


def _known_schedules() -> dict:
    """Every crontab and interval row, keyed as ``periodic_task_fields`` memoises them: a batch
    then creates only the schedules no job used before, instead of one lookup per job."""
    known: dict = {}
    for row in CrontabSchedule.objects.all():
        fields = (row.minute, row.hour, row.day_of_month, row.month_of_year, row.day_of_week, str(row.timezone))
        known.setdefault(("crontab", *fields), row)
    for row in IntervalSchedule.objects.filter(period=IntervalSchedule.SECONDS):
        known.setdefault(("interval", row.every), row)
    return known
