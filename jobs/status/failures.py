"""Reads behind "failures first": the runs that need an operator's look, and each run's lineage
(the run it retries, the run that retried it). (The dashboard's job filters and its failing-first
order are in ``jobs.status.listing``, done by the database.)

A failure needs a look until it is retried (by the runner or by a person: a run whose
``retry_of`` names it) or acknowledged (``JobRun.acknowledged_at``); either sets ``triaged_at``.
A retry waiting to run is listed too, as "retrying".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from jobs.models import Job, JobRun
from jobs.status.listing import WEBHOOKS, command_apps
from jobs.status.rows import runs_page

FAILURES_PAGE_SIZE = 50
RETRYING = "retrying"
FAILURE_FILTER_STATUSES = (*[status.value for status in JobRun.FAILURE_STATUSES], RETRYING)
TEXT_LIMIT = 100


def with_lineage(runs: QuerySet[JobRun]) -> QuerySet[JobRun]:
    """``runs`` each with ``retried_as_id``: the id of the run that retries it, or None. A
    sub-select per row on the partial unique index jobs_jobrun_one_retry_per_run, in the list's
    own query (``retry_of_id``, the other way, is a column)."""
    retries = JobRun.objects.filter(retry_of=OuterRef("pk")).values("pk")[:1]
    return runs.annotate(retried_as_id=Subquery(retries))


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


@dataclass(frozen=True)
class FailureFilters:
    """What the failures page's address asks for; empty means "any". Days are UTC, both included."""

    job: str = ""
    app: str = ""
    status: str = ""
    since: date | None = None
    until: date | None = None
    housekeeping: bool = False  # include the upkeep jobs' failures (Job.housekeeping)

    @classmethod
    def from_query(cls, params) -> FailureFilters:
        status = params.get("status", "")
        return cls(
            job=params.get("job", "")[:TEXT_LIMIT].strip(),
            app=params.get("app", "")[:TEXT_LIMIT].strip(),
            status=status if status in FAILURE_FILTER_STATUSES else "",
            since=_day(params.get("since", "")[:10]),
            until=_day(params.get("until", "")[:10]),
            housekeeping=params.get("housekeeping", "") == "1",
        )

    def query(self, **extra) -> dict:
        """The non-default values as GET parameters (for links that keep the view)."""
        values = {
            "job": self.job,
            "app": self.app,
            "status": self.status,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "housekeeping": "1" if self.housekeeping else "",
            **extra,
        }
        return {key: value for key, value in values.items() if value not in ("", None)}

    @property
    def any(self) -> bool:
        return bool(self.job or self.app or self.status or self.since or self.until)


def open_failures() -> Q:
    """A failure nobody acknowledged and nothing retried, or a retry waiting to run: the condition
    of jobs_jobrun_open_failures. ``triaged_at`` takes a handled failure out of that index; the
    check for a retry stays, so a retry whose ``triaged_at`` was never written (the process
    stopped before its run_finished receiver ran) still takes its failure off the list."""
    retried = Exists(JobRun.objects.filter(retry_of=OuterRef("pk")))
    failed = Q(status__in=JobRun.FAILURE_STATUSES, triaged_at__isnull=True) & ~retried
    return failed | Q(status=JobRun.Status.QUEUED, triggered_by=JobRun.Trigger.RETRY)


def jobs_of_app(app: str) -> QuerySet[Job]:
    if app == WEBHOOKS:
        return Job.objects.filter(webhook_handler__isnull=False)
    return Job.objects.filter(command__in=[name for name, label in command_apps().items() if label == app])


def failures_filtered(filters: FailureFilters, *, jobs=None) -> QuerySet[JobRun]:
    """The open failures matching ``filters`` among ``jobs`` (the reader's visible jobs), each
    with its lineage. Every filter narrows the walk of jobs_jobrun_open_failures (newest first)."""
    runs = JobRun.objects.filter(open_failures())
    if filters.status == RETRYING:
        runs = runs.filter(status=JobRun.Status.QUEUED)
    elif filters.status:
        runs = runs.filter(status=filters.status)
    if filters.job:
        runs = runs.filter(job__name=filters.job)
    if filters.app:
        runs = runs.filter(job__in=jobs_of_app(filters.app))
    if filters.since:
        runs = runs.filter(created_at__gte=datetime.combine(filters.since, time.min, tzinfo=UTC))
    if filters.until:
        runs = runs.filter(created_at__lt=datetime.combine(filters.until + timedelta(days=1), time.min, tzinfo=UTC))
    if not filters.housekeeping:
        runs = runs.exclude(job__in=Job.objects.housekeeping())
    if jobs is not None:  # only the jobs the reader may see (jobs.permissions.access)
        runs = runs.filter(job__in=jobs)
    return with_lineage(runs.select_related("job"))


def failed_runs(
    *, filters: FailureFilters | None = None, before: JobRun | None = None, jobs=None
) -> tuple[list[JobRun], bool]:
    """One page of open failures (failed, timed out, abandoned, neither retried nor acknowledged)
    and retries waiting to run, newest first, by keyset (no OFFSET, no COUNT over a large
    table); and whether more follow."""
    runs = failures_filtered(filters or FailureFilters(), jobs=jobs)
    return runs_page(runs, before=before, size=FAILURES_PAGE_SIZE)
