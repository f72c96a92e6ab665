"""Staff actions on the raw beat schedule (every django-celery-beat ``PeriodicTask``).

A task that a Job owns holds the job's schedule: pausing it pauses the job, which needs the
job's own toggle rule in ``jobs.permissions.access``; it is deleted with the job, not on its own.
Every action writes an audit entry per task it touched. A task no job owns may name only a task
``schedulable_task_names`` lists.
"""

from __future__ import annotations

from celery import current_app
from django.conf import settings
from django.db import transaction
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from jobs.models import AuditEntry, Job
from jobs.permissions import access
from jobs.permissions.audit import audit_record
from jobs.scheduling.pauses import job_pause, job_resume

# Celery's own beat entry (expired results); it takes no arguments. Celery's other built-ins
# (celery.map, celery.chain, celery.chord...) run whatever task their arguments name.
CELERY_TASKS_ALLOWED = frozenset({"celery.backend_cleanup"})
# The job engine's tasks (jobs.tasks.*): they take a run or job id and only the engine sends them.
ENGINE_TASK_PREFIX = "jobs."


class ScheduleActionRefused(Exception):
    """The action does not apply to this task; the message says why and what to do instead."""


def periodic_tasks_listing():
    """Every PeriodicTask with its schedule and owning job, in one query."""
    return PeriodicTask.objects.select_related("crontab", "interval", "solar", "clocked", "job").order_by("name")


def schedulable_task_names() -> list[str]:
    """The registered Celery tasks a periodic task that no job owns may name: Celery's result
    clean-up and what ``JOBS_BEAT_EXTRA_TASKS`` names, never the job engine's. An allow-list, so a
    permission to edit a beat row never runs a job's run, a webhook re-send or an arbitrary task."""
    current_app.loader.import_default_modules()
    allowed = CELERY_TASKS_ALLOWED | set(settings.JOBS_BEAT_EXTRA_TASKS)
    return sorted(name for name in current_app.tasks if name in allowed and not name.startswith(ENGINE_TASK_PREFIX))


def owning_job(task: PeriodicTask) -> Job | None:
    try:
        return task.job
    except Job.DoesNotExist:
        return None


def periodic_tasks_set_enabled(*, tasks, enabled: bool, user, address: str = "") -> int:
    """Pause or resume tasks; a job's task through its job, which ``user`` must be allowed to
    toggle (``jobs.permissions.access``). Returns how many changed; raises ScheduleActionRefused (audited,
    nothing changed) when a job's task is out of the user's reach."""
    tasks = list(tasks)
    toggle_allowed = access.allowed_ids(user, access.TOGGLE)
    for task in tasks:
        job = owning_job(task)
        if job is not None and job.pk not in toggle_allowed:
            reason = access.refusal_reason(user, access.TOGGLE)
            action = AuditEntry.Action.ENABLE if enabled else AuditEntry.Action.DISABLE
            audit_record(actor=user, action=action, instance=job, address=address, refused=reason)
            raise ScheduleActionRefused(f"{task.name} belongs to job {job.name}: not allowed ({reason}).")
    return _set_enabled(tasks=tasks, enabled=enabled, user=user, address=address)


@transaction.atomic
def _set_enabled(*, tasks: list[PeriodicTask], enabled: bool, user, address: str) -> int:
    changed = 0
    for task in tasks:
        if task.enabled == enabled:
            continue
        job = owning_job(task)
        if job is not None:
            # Through the one pause writer (conditional, audited on the job); the task follows it.
            if enabled:
                job_resume(job=job, who=user, address=address)
            else:
                job_pause(job=job, who=user, reason="", address=address)
        else:
            PeriodicTask.objects.filter(pk=task.pk).update(enabled=enabled)
        task.enabled = enabled
        audit_record(actor=user, action="update", instance=task, before={"enabled": not enabled}, fields=["enabled"])
        changed += 1
    PeriodicTasks.update_changed()
    return changed


@transaction.atomic
def periodic_task_unschedule(*, task: PeriodicTask, user) -> None:
    """Delete a task no job owns (a job's task goes with the job: pause or delete the job)."""
    job = owning_job(task)
    if job is not None:
        raise ScheduleActionRefused(
            f"{task.name} belongs to job {job.name} (it holds its schedule): pause or delete the job instead."
        )
    audit_record(actor=user, action="delete", instance=task)
    task.delete()  # .delete() bumps PeriodicTasks.last_update, which beat watches
