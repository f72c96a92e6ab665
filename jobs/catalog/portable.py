"""A job and a webhook handler as plain JSON values: what the CRUD API shows and takes, and what
``export_jobs`` writes and ``import_jobs`` reads.

The values are the ones a person chooses (name, handler, schedule, limits); never what beat and
the runner write (next slot, statistics) and never a secret: a handler's secret and its extra
headers' values are write-only. A handler's header names are kept; their values are not.
"""

from __future__ import annotations

import re

from jobs.models import Job, WebhookHandler

# A job's definition, in the order a file lists them. ``webhook_handler`` is the handler's name.
JOB_FIELDS = (
    "name",
    "description",
    "command",
    "webhook_handler",
    "config",
    "cron_expression",
    "timezone",
    "interval_seconds",
    "enabled",
    "timeout_seconds",
    "max_retries",
    "retry_backoff_seconds",
    "expected_duration_seconds",
    "notify_on_failure",
    "housekeeping",
    "grace_seconds",
    "catch_up",
    "catch_up_limit",
    "escalate_after_failures",
)
# A handler's definition without its write-only values (secret, extra header values).
HANDLER_FIELDS = ("name", "url", "method", "auth", "auth_username", "auth_header_name", "timeout_seconds")


def job_definition(job: Job) -> dict:
    """The job's chosen values (its schedule read from its beat rows), in ``JOB_FIELDS`` order."""
    values = {name: getattr(job, name) for name in JOB_FIELDS if name != "webhook_handler"}
    values["webhook_handler"] = job.webhook_handler.name if job.webhook_handler_id else None
    return {name: values[name] for name in JOB_FIELDS}


def handler_definition(handler: WebhookHandler) -> dict:
    """The handler's readable values; no secret and no header value, in any form."""
    return {name: getattr(handler, name) for name in HANDLER_FIELDS}


def secret_variable(handler_name: str, header: str | None = None) -> str:
    """The environment variable a file names for a handler's secret (or one header's value):
    ``CRONHOUSE_HANDLER_<NAME>_SECRET`` / ``CRONHOUSE_HANDLER_<NAME>_HEADER_<HEADER>``, upper case,
    every other character an underscore."""
    part = f"HEADER_{header}" if header is not None else "SECRET"
    return re.sub(r"[^A-Z0-9]", "_", f"CRONHOUSE_HANDLER_{handler_name}_{part}".upper())
