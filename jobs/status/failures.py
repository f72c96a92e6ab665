"""Reads behind "failures first": the runs that need an operator's look. (The dashboard's job
filters and its failing-first order are in ``jobs.status.listing``, done by the database.)"""

from __future__ import annotations

from django.db.models import Q

from jobs.models import JobRun
from jobs.status.rows import runs_page

FAILURES_PAGE_SIZE = 50


def failed_runs(*, before: JobRun | None = None, job_name: str = "", jobs=None) -> tuple[list[JobRun], bool]:
    """One page of runs that ended badly (failed, timed out, abandoned) or wait to be retried,
    newest first, by keyset (no OFFSET, no COUNT over a large table); and whether more follow."""
    retrying = Q(status=JobRun.Status.QUEUED, triggered_by=JobRun.Trigger.RETRY)
    runs = JobRun.objects.filter(Q(status__in=JobRun.FAILURE_STATUSES) | retrying).select_related("job")
    if job_name:
        runs = runs.filter(job__name=job_name)
    if jobs is not None:  # only the jobs the reader may see (jobs.permissions.access)
        runs = runs.filter(job__in=jobs)
    return runs_page(runs, before=before, size=FAILURES_PAGE_SIZE)
