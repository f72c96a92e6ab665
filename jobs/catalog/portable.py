"""A job and a webhook handler as plain JSON values: what the CRUD API shows and takes, and what
``export_jobs`` writes and ``import_jobs`` reads.

The values are the ones a person chooses (name, handler, schedule, limits); never what beat and
the runner write (next slot, statistics) and never a secret: a handler's secret and its extra
headers' values are write-only. A handler's header names are kept; their values are not.

In a definitions file (``export_jobs``) a handler's secret and header values are named by the
environment variable ``import_jobs`` reads them from (``secret_from_env``,
``extra_headers_from_env``), never written out.

A file also carries what links a job to other rows, each by name and sorted: the jobs it waits
for (``waits_for``), the operator groups it is limited to (``operator_groups``), and a top-level
``blackout_windows`` list with each window's jobs and groups. The CRUD API's job has none of them
(the admin edits them).

Operator groups travel. A job limited to groups is closed to everyone else with the model
permission; a file that dropped the limit would open it to all of them on the next install, so an
export keeps the limit and an import refuses a group name the database does not have (nothing is
written) rather than import the job open. Groups themselves do not travel: who is in a group is
the installation's to say, so create them (and their members) before importing.
"""

from __future__ import annotations

import json
import re

from django.db.models import Prefetch

from jobs.models import BlackoutWindow, Job, JobDependency, JobOperatorGroup, WebhookHandler
from jobs.scheduling.beat_rows import SCHEDULE_ROWS

# A job's definition, in the order a file lists them, related values together: what it runs and
# on which queue, when (and how far each scheduled run is spread), what a trigger does while a run
# is active, limits and retries, alerts, lateness and catch-up, windows and chains.
# ``webhook_handler`` is the handler's name.
JOB_FIELDS = (
    "name",
    "description",
    "command",
    "webhook_handler",
    "config",
    "queue",
    "cron_expression",
    "timezone",
    "interval_seconds",
    "jitter_seconds",
    "enabled",
    "overlap",
    "max_concurrent",
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
    "window_action",
    "chain_deadline_seconds",
)
# What links a job to other rows in a file, after its fields: the names of the jobs it waits for
# and of the groups it is limited to.
JOB_LINKS = ("waits_for", "operator_groups")
# A blackout window in a file; its jobs and groups by name.
WINDOW_FIELDS = ("name", "kind", "starts_on", "starts_at", "ends_on", "ends_at", "reason", "jobs", "groups")
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


def handler_file_definition(handler: WebhookHandler) -> dict:
    """A handler as a file holds it: its secret and header values as the variables that carry them."""
    definition = handler_definition(handler)
    if handler.secret:
        definition["secret_from_env"] = secret_variable(handler.name)
    if handler.extra_headers:
        definition["extra_headers_from_env"] = {
            header: secret_variable(handler.name, header) for header in sorted(handler.extra_headers)
        }
    return definition


def job_file_definition(job: Job) -> dict:
    """A job as a file holds it: its config's keys sorted, so the same job is the same text on
    either database (PostgreSQL's jsonb keeps its own key order), then its links by name, sorted.
    ``job`` comes with its ``dependencies`` and ``operator_groups`` prefetched (``definitions_export``)."""
    definition = job_definition(job)
    definition["config"] = json.loads(json.dumps(definition["config"] or {}, sort_keys=True))
    definition["waits_for"] = sorted(dependency.upstream.name for dependency in job.dependencies.all())
    definition["operator_groups"] = sorted(limit.group.name for limit in job.operator_groups.all())
    return definition


def window_file_definition(window: BlackoutWindow) -> dict:
    """A blackout window as a file holds it: dates and times as ISO text (a yearly window's year
    is the stored leap year, which means nothing), its jobs and groups by name, sorted."""
    return {
        "name": window.name,
        "kind": window.kind,
        "starts_on": window.starts_on.isoformat(),
        "starts_at": window.starts_at.isoformat(),
        "ends_on": window.ends_on.isoformat(),
        "ends_at": window.ends_at.isoformat(),
        "reason": window.reason,
        "jobs": sorted(job.name for job in window.jobs.all()),
        "groups": sorted(group.name for group in window.groups.all()),
    }


def definitions_export() -> dict:
    """Every webhook handler, job and blackout window, by name: what ``export_jobs`` writes and
    ``import_jobs`` reads. A few queries per 2,000 jobs, however many links they have."""
    jobs = (
        Job.objects.select_related("webhook_handler", *SCHEDULE_ROWS)
        .prefetch_related(
            Prefetch(
                "dependencies", queryset=JobDependency.objects.select_related("upstream").only("job", "upstream__name")
            ),
            Prefetch("operator_groups", queryset=JobOperatorGroup.objects.select_related("group")),
        )
        .order_by("name")
    )
    windows = BlackoutWindow.objects.prefetch_related(
        Prefetch("jobs", queryset=Job.objects.only("name")), "groups"
    ).order_by("name")
    return {
        "webhook_handlers": [handler_file_definition(handler) for handler in WebhookHandler.objects.order_by("name")],
        "jobs": [job_file_definition(job) for job in jobs.iterator(chunk_size=2000)],
        "blackout_windows": [window_file_definition(window) for window in windows],
    }


def definitions_text(definitions: dict) -> str:
    return json.dumps(definitions, indent=2, ensure_ascii=False) + "\n"
