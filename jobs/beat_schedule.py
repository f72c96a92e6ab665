"""Staff actions on the raw beat schedule (every django-celery-beat ``PeriodicTask``).

A task that a Job owns is changed through the Job, the source of truth (pausing it disables
the job; it cannot be unscheduled on its own, or the next save of the job would bring it
back). Every action writes an audit entry per task it touched.
"""

from __future__ import annotations

from django.db import transaction
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from .audit import audit_record
from .models import Job
from .sync import jobs_set_enabled, orphan_periodic_tasks


class ScheduleActionRefused(Exception):
    """The action does not apply to this task; the message says why and what to do instead."""


def periodic_tasks_listing():
    """Every PeriodicTask with its schedule and owning job, in one query."""
    return PeriodicTask.objects.select_related("crontab", "interval", "solar", "clocked", "job").order_by("name")


def owning_job(task: PeriodicTask) -> Job | None:
    try:
        return task.job
    except Job.DoesNotExist:
        return None


@transaction.atomic
def periodic_tasks_set_enabled(*, tasks, enabled: bool, user) -> int:
    """Pause or resume tasks; a job's task through its job. Returns how many changed."""
    changed = 0
    for task in tasks:
        if task.enabled == enabled:
            continue
        job = owning_job(task)
        if job is not None:
            jobs_set_enabled(job_ids=[job.pk], enabled=enabled)
            job.enabled = enabled
            audit_record(actor=user, action="update", instance=job, before={"enabled": not enabled}, fields=["enabled"])
        else:
            PeriodicTask.objects.filter(pk=task.pk).update(enabled=enabled)
        task.enabled = enabled
        audit_record(actor=user, action="update", instance=task, before={"enabled": not enabled}, fields=["enabled"])
        changed += 1
    PeriodicTasks.update_changed()
    return changed


@transaction.atomic
def periodic_task_unschedule(*, task: PeriodicTask, user) -> None:
    """Delete a task no job owns (a job's task goes with the job: disable or delete the job)."""
    job = owning_job(task)
    if job is not None:
        raise ScheduleActionRefused(
            f"{task.name} belongs to job {job.name}: disable or delete the job instead (it would come back)."
        )
    audit_record(actor=user, action="delete", instance=task)
    task.delete()  # .delete() bumps PeriodicTasks.last_update, which beat watches


@transaction.atomic
def orphans_purge(*, user) -> list[str]:
    """Delete every PeriodicTask of the run task that no Job owns; returns their names."""
    orphans = list(orphan_periodic_tasks().select_for_update(of=("self",)))
    for task in orphans:
        audit_record(actor=user, action="delete", instance=task, fields=["task", "kwargs"])
    PeriodicTask.objects.filter(pk__in=[task.pk for task in orphans]).delete()
    PeriodicTasks.update_changed()
    return [task.name for task in orphans]
