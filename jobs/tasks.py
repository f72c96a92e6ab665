"""Celery adapters: take ids, call the runner."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import runner
from .ticks import tick_fire


@shared_task(name=runner.EXECUTE_TASK, ignore_result=True)
def execute_run(run_id: int) -> None:
    runner.run_execute(run_id)


@shared_task(name="jobs.tasks.trigger_scheduled_job", ignore_result=True)
def trigger_scheduled_job(job_id: int, fired_at: str | None = None) -> None:
    """Beat's entry task. Cronhouse's scheduler books the tick in-process instead of sending this,
    so the run row is committed even with the broker down; this path serves other schedulers."""
    moment = parse_datetime(fired_at) if fired_at else timezone.now()
    tick_fire(job_id=job_id, fired_at=moment)
