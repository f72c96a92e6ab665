"""Reads behind "failures first": the runs that need an operator's look, and the dashboard's job
filters (status, app, text) and order (failing jobs on top)."""

from __future__ import annotations

from functools import cache

from django.core.management import get_commands
from django.db.models import Q

from .models import JobRun
from .selectors import LATE, JobRow, runs_page

FAILURES_PAGE_SIZE = 50
# The dashboard's order: what needs a look first.
STATUS_ORDER = {"failed": 0, LATE: 1, "running": 2, "idle": 3, "disabled": 4}
WEBHOOKS = "webhooks"


def status_rank(status: str) -> int:
    """Where a job of this status comes in the dashboard's order: failing first."""
    return STATUS_ORDER.get(status, len(STATUS_ORDER))


def failed_runs(*, before: JobRun | None = None, job_name: str = "", jobs=None) -> tuple[list[JobRun], bool]:
    """One page of runs that ended badly (failed, timed out, abandoned) or wait to be retried,
    newest first, by keyset (no OFFSET, no COUNT over a large table); and whether more follow."""
    retrying = Q(status=JobRun.Status.QUEUED, triggered_by=JobRun.Trigger.RETRY)
    runs = JobRun.objects.filter(Q(status__in=JobRun.FAILURE_STATUSES) | retrying).select_related("job")
    if job_name:
        runs = runs.filter(job__name=job_name)
    if jobs is not None:  # only the jobs the reader may see (jobs.access)
        runs = runs.filter(job__in=jobs)
    return runs_page(runs, before=before, size=FAILURES_PAGE_SIZE)


@cache
def _command_apps() -> dict[str, str]:
    """Management command name -> the label of the app that ships it (``billing``, ``sessions``)."""
    return {name: app.rsplit(".", 1)[-1] for name, app in get_commands().items()}


def job_app(row: JobRow) -> str:
    if row.job.webhook_handler_id:
        return WEBHOOKS
    return _command_apps().get(row.job.command, "")


def rows_filtered(rows: list[JobRow], *, status: str = "", app: str = "", text: str = "") -> list[JobRow]:
    """The dashboard's rows that match every given filter, failing jobs first, then by name."""
    needle = text.strip().lower()
    kept = [
        row
        for row in rows
        if (not status or row.status == status)
        and (not app or job_app(row) == app)
        and (not needle or needle in row.job.name.lower() or needle in (row.job.description or "").lower())
    ]
    return sorted(kept, key=lambda row: (status_rank(row.status), row.job.name))


def apps_of(rows: list[JobRow]) -> list[str]:
    return sorted({job_app(row) for row in rows} - {""})
