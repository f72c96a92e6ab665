"""Celery adapters: take ids, call the runner."""

from __future__ import annotations

from celery import shared_task

from . import runner


@shared_task(name=runner.EXECUTE_TASK, ignore_result=True)
def execute_run(run_id: int) -> None:
    runner.run_execute(run_id)


@shared_task(name="jobs.tasks.trigger_scheduled_job", ignore_result=True)
def trigger_scheduled_job(job_id: int, fired_at: str | None = None) -> None:
    """The task a job's PeriodicTask names. Cronhouse's beat never sends it (it records due slots
    itself, jobs.firing); a plain django-celery-beat that does gets every due slot recorded by
    the same code, each once."""
    from .firing import due_jobs_fire

    due_jobs_fire()
