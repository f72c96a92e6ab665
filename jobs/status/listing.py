"""The job list as the dashboard, ``data.json``, ``/api/jobs/status`` and ``manage.py jobs`` read
it at any fleet size: each job's status computed by the database from columns stored on the job
row (so filters, counts and order run in SQL), counts by status in one ``GROUP BY``, and one page
of jobs at a time. Only the jobs shown get the per-job work (``selectors.job_rows``).

Statuses, one vocabulary everywhere: ``failed``, ``late``, ``running``, ``idle`` (ok) and
``paused``, decided in this order: paused, then running (an active run exists,
partial index jobs_jobrun_active), then late (``late_at <= now``), then failed (the last run's
status), else idle -- the same rules as ``Job.status`` plus ``Job.objects.late``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.contrib.auth.models import Group
from django.core.management import get_commands
from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Value, When

from jobs.models import Job, JobOperatorGroup, JobRun
from jobs.status.rows import LATE

# The dashboard's order: what needs a look first.
STATUSES = (Job.Status.FAILED.value, LATE, Job.Status.RUNNING.value, Job.Status.IDLE.value, Job.Status.PAUSED.value)
# The word the status API and bookmarked addresses used for "paused" before it was the one name.
PAUSED_OLD_NAME = "disabled"
WEBHOOKS = "webhooks"
# Sortable columns: what the address names -> the job field (then name, which is unique).
SORTS = {
    "status": "status_rank",
    "name": "name",
    "last_run": "last_run_at",
    "next_run": "next_fire_at",
    "duration": "last_duration",
}
TEXT_LIMIT = 100


@dataclass(frozen=True)
class JobFilters:
    """What the address (or the command line) asks the list for; empty means "any"."""

    status: str = ""
    app: str = ""
    group: str = ""
    q: str = ""
    sort: str = "status"
    order: str = "ascending"

    @classmethod
    def from_query(cls, params) -> JobFilters:
        """From GET parameters: an unknown status, sort or order is read as the default."""
        raw = {name: params.get(name, "")[:TEXT_LIMIT].strip() for name in ("status", "app", "group", "q")}
        if raw["status"] == PAUSED_OLD_NAME:
            raw["status"] = Job.Status.PAUSED.value
        if raw["status"] not in STATUSES:
            raw["status"] = ""
        sort = params.get("sort", "")
        order = params.get("order", "")
        return cls(
            **raw,
            sort=sort if sort in SORTS else "status",
            order=order if order in ("ascending", "descending") else "ascending",
        )

    def query(self, **extra) -> dict:
        """The non-default values as GET parameters (for links that keep the view)."""
        values = {"status": self.status, "app": self.app, "group": self.group, "q": self.q}
        if (self.sort, self.order) != ("status", "ascending"):
            values.update(sort=self.sort, order=self.order)
        values.update(extra)
        return {key: value for key, value in values.items() if value not in ("", None)}

    @property
    def any(self) -> bool:
        return bool(self.status or self.app or self.group or self.q)


def active_job_ids() -> QuerySet:
    """The jobs with a queued or running run (partial index jobs_jobrun_one_active_per_lane): a
    few rows, read once per statement and hashed, not probed once per job."""
    return JobRun.objects.filter(status__in=JobRun.ACTIVE_STATUSES).values("job_id")


def status_expression(now: datetime) -> Case:
    return Case(
        When(enabled=False, then=Value(Job.Status.PAUSED.value)),
        When(pk__in=active_job_ids(), then=Value(Job.Status.RUNNING.value)),
        When(late_at__lte=now, then=Value(LATE)),
        When(last_run_status__in=JobRun.FAILURE_STATUSES, then=Value(Job.Status.FAILED.value)),
        default=Value(Job.Status.IDLE.value),
    )


def with_status(jobs: QuerySet[Job], now: datetime) -> QuerySet[Job]:
    """``jobs`` annotated with ``list_status`` and its place in the dashboard's order."""
    ranks = [When(list_status=status, then=Value(rank)) for rank, status in enumerate(STATUSES)]
    return jobs.annotate(list_status=status_expression(now)).annotate(
        status_rank=Case(*ranks, default=Value(len(STATUSES)), output_field=IntegerField())
    )


@cache
def command_apps() -> dict[str, str]:
    """Management command name -> the label of the app that ships it (``billing``, ``sessions``)."""
    return {name: app.rsplit(".", 1)[-1] for name, app in get_commands().items()}


def app_of(job: Job) -> str:
    return WEBHOOKS if job.webhook_handler_id else command_apps().get(job.command, "")


def jobs_filtered(jobs: QuerySet[Job], filters: JobFilters, now: datetime) -> QuerySet[Job]:
    """The jobs matching every filter, in the order asked for (name breaks ties)."""
    jobs = with_status(jobs, now)
    if filters.status:
        jobs = jobs.filter(list_status=filters.status)
    if filters.app == WEBHOOKS:
        jobs = jobs.filter(webhook_handler__isnull=False)
    elif filters.app:
        jobs = jobs.filter(command__in=[name for name, app in command_apps().items() if app == filters.app])
    if filters.group:
        groups = JobOperatorGroup.objects.filter(job=OuterRef("pk"), group__name=filters.group)
        jobs = jobs.filter(Exists(groups))
    if filters.q:
        jobs = jobs.filter(Q(name__icontains=filters.q) | Q(description__icontains=filters.q))
    column = F(SORTS[filters.sort])
    first = column.desc(nulls_last=True) if filters.order == "descending" else column.asc(nulls_last=True)
    return jobs.order_by(first, "name")


def status_counts(jobs: QuerySet[Job], now: datetime) -> dict[str, int]:
    """How many of ``jobs`` have each status (every status named, zeros included): one GROUP BY."""
    counts = dict.fromkeys(STATUSES, 0)
    grouped = jobs.annotate(list_status=status_expression(now)).values("list_status").order_by()
    for row in grouped.annotate(count=Count("pk")):
        counts[row["list_status"]] = row["count"]
    return counts


def late_count(now: datetime) -> int:
    """How many jobs are late (the status ``late``): a range scan of the partial index
    jobs_job_late, not a pass over every job."""
    return Job.objects.late(now).exclude(pk__in=active_job_ids()).count()


def apps_among(jobs: QuerySet[Job]) -> list[str]:
    """The apps whose commands ``jobs`` run (a DISTINCT over a few command names), plus webhooks."""
    commands = jobs.exclude(command="").values_list("command", flat=True).order_by("command").distinct()
    apps = {command_apps().get(command, "") for command in commands}
    if jobs.filter(webhook_handler__isnull=False).exists():
        apps.add(WEBHOOKS)
    return sorted(apps - {""})


def group_names() -> list[str]:
    """The groups some job is limited to (the dashboard's group filter)."""
    limited = JobOperatorGroup.objects.values("group")
    return list(Group.objects.filter(pk__in=limited).order_by("name").values_list("name", flat=True))


# -- the API's cursor: the last name of the page, opaque to clients ----------------------------


def cursor_encode(name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": name}).encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> str | None:
    """The name the page starts after, or None for a cursor this server did not make."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    after = data.get("after") if isinstance(data, dict) else None
    return after if isinstance(after, str) else None
