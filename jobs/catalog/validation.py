"""The one validation of a job's handler: what the model cannot check without importing the run
engine, the allow-list (``jobs.catalog.allowlist``), the command's own parser
(``jobs.running.execution.config_error``) and the queue its runs go to (``configured_queues``).
Every way a job is written calls it: the admin's and the dashboard's form (``handler_errors``,
``overlap_errors``), ``import_jobs`` and ``seed_jobs`` (``job_full_clean``). The worker checks the
command and its config again before every run (``jobs.running.execution.run_refusal``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError

from jobs.catalog.allowlist import command_refusal
from jobs.models import Job
from jobs.running.execution import config_error


def configured_queues() -> list[str]:
    """The Celery queues a job may name: the default queue (CELERY_TASK_DEFAULT_QUEUE), which a
    job naming none uses, then JOBS_QUEUES."""
    default = settings.CELERY_TASK_DEFAULT_QUEUE
    return [default, *(name for name in dict.fromkeys(settings.JOBS_QUEUES) if name != default)]


def queue_error(queue: str) -> str | None:
    """Why a job may not name ``queue`` (None: it may). A queue no worker is configured for would
    hold its runs for ever."""
    if not queue or queue in configured_queues():
        return None
    return f"Queue {queue!r} is not configured; choose one of {', '.join(configured_queues())} (JOBS_QUEUES)."


def handler_errors(*, command: str, config, queue: str = "") -> dict[str, str]:
    """Why a job may not run ``command`` with ``config`` on ``queue``, by field (empty: it may)."""
    errors = {"queue": error} if (error := queue_error(queue)) else {}
    if not command:
        return errors
    if refusal := command_refusal(command):
        return {**errors, "command": refusal}
    if error := config_error(command, {} if config is None else config):
        return {**errors, "config": error}
    return errors


def overlap_errors(*, overlap: str, max_concurrent) -> dict[str, str]:
    """Why a job may not have this overlap policy (empty: it may): N concurrent runs is a number
    of the "allow" policy only, so a form never keeps an N that no policy reads."""
    if overlap != Job.Overlap.ALLOW and max_concurrent not in (None, 1):
        return {
            "max_concurrent": "More than one concurrent run needs the overlap policy 'Allow up to N concurrent runs'."
        }
    return {}


def job_full_clean(job: Job, **kwargs) -> None:
    """``job.full_clean(**kwargs)`` and the handler's checks: every reason in one ValidationError."""
    errors: dict[str, list] = {}
    try:
        job.full_clean(**kwargs)
    except ValidationError as exc:
        errors = exc.update_error_dict(errors)
    found = handler_errors(command=job.command, config=job.config, queue=job.queue)
    found.update(overlap_errors(overlap=job.overlap or Job.Overlap.SKIP, max_concurrent=job.max_concurrent))
    for field, message in found.items():
        if field not in errors:
            errors[field] = [message]
    if errors:
        raise ValidationError(errors)
