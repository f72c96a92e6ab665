"""The job-status rows: what the dashboard, ``/api/jobs/status``, ``manage.py jobs``,
``/health/`` and ``/metrics`` show about a job, from one function (``job_rows``), in a number
of queries that does not grow with the number of runs (and grows with the number of jobs only
per ``RECENT_CHUNK`` jobs). The pages call it for one page of jobs (``jobs.status.listing``).

    jobs                     1 query  (Job table, with its denormalised last-run statistics)
    active runs              1 query  (partial index jobs_jobrun_active)
    last runs' warnings      1 query per RECENT_CHUNK jobs whose last run warned (none otherwise)
    recent runs of each job  1 query per RECENT_CHUNK jobs: UNION ALL of one LIMITed index scan
                                      of jobs_jobrun_job_created per job (none with recent_per_job=0)
    totals of the last 24 h  1 query  (the dashboard only)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from django.db import connection
from django.db.models import Count, Q, prefetch_related_objects
from django.utils import timezone

from core.formatting import one_line
from jobs.models import Job, JobRun
from jobs.running.progress import progress_json
from jobs.scheduling.cron import schedule_problem, upcoming_runs
from jobs.scheduling.schedules import SCHEDULE_ROWS

RECENT_PER_JOB = 20
# Sub-selects per UNION ALL statement (SQLite allows 500 compound terms).
RECENT_CHUNK = 100
RECENT_FIELDS = (
    "id",
    "job_id",
    "status",
    "created_at",
    "started_at",
    "finished_at",
    "duration",
    "error",
    "slow",
    "options",  # a dry run is marked in lists and is never the job's last failure
    "warnings",  # "succeeded with warnings" in the history
)
LATE = "late"


@dataclass
class JobRow:
    job: Job
    status: str
    now: datetime  # the moment the row describes: its next run is the first slot after it
    active_run_id: int | None
    recent: list[JobRun] = field(default_factory=list)  # newest first
    warnings: list[str] = field(default_factory=list)  # the job's last run's, when it succeeded with them

    @cached_property
    def next_run(self) -> datetime | None:
        """Computed from the schedule only when shown: a count over many rows does no cron work."""
        return job_next_run(self.job, self.now)

    @property
    def last_run_text(self) -> str:
        """The last run's status as lists show it: "succeeded with warnings" when it warned."""
        status = self.job.last_run_status
        return "succeeded with warnings" if status == JobRun.Status.SUCCEEDED and self.warnings else status

    @property
    def schedule_problem(self) -> str | None:
        """Why an enabled job has no next run: its stored expression never fires."""
        if self.next_run is not None or not self.job.enabled:
            return None
        return schedule_problem(self.job.cron_expression, self.job.interval_seconds)

    @property
    def durations(self) -> list[float]:
        """Seconds of the recent finished runs, oldest first (the sparkline's order)."""
        return [r.duration.total_seconds() for r in reversed(self.recent) if r.duration is not None]

    @property
    def slow(self) -> bool:
        """The newest run ran (or is running) longer than the job's expected duration."""
        return bool(self.recent) and self.recent[0].slow

    @property
    def last_failure(self) -> JobRun | None:
        """The newest failed run among the recent ones, while the job's last result is a failure."""
        if self.job.last_run_status not in JobRun.FAILURE_STATUSES:
            return None
        return next(
            (r for r in self.recent if r.status in JobRun.FAILURE_STATUSES and r.error and not is_dry_run(r)), None
        )

    @property
    def last_error(self) -> str:
        """The first line of the newest failure's error, while the job's last result is a failure."""
        failed = self.last_failure
        return one_line(failed.error) if failed else ""


def is_dry_run(run: JobRun) -> bool:
    """A run asked to report what it would do and write nothing (``options.dry_run``)."""
    return bool((run.options or {}).get("dry_run"))


def runs_page(runs, *, before: JobRun | None, size: int) -> tuple[list[JobRun], bool]:
    """One page of ``runs`` newest first, after ``before``, by keyset (no OFFSET, no COUNT over a
    large table); and whether more follow."""
    runs = runs.order_by("-created_at", "-id")
    if before is not None:
        runs = runs.filter(Q(created_at__lt=before.created_at) | Q(created_at=before.created_at, pk__lt=before.pk))
    page = list(runs[: size + 1])
    return page[:size], len(page) > size


def recent_runs_by_job(job_ids: list[int], per_job: int = RECENT_PER_JOB) -> dict[int, list[JobRun]]:
    """The newest ``per_job`` runs of each job, newest first.

    One statement per chunk of jobs: ``SELECT * FROM (<job 1's newest N>) UNION ALL ...``. Each
    term is an index range scan of (job, -created_at) that stops after N rows, so the cost
    depends on jobs x N, never on how many runs the table holds. (Django's ``union()`` cannot
    slice terms on SQLite; a window function would read every run.)
    """
    found: dict[int, list[JobRun]] = {pk: [] for pk in job_ids}
    for start in range(0, len(job_ids), RECENT_CHUNK):
        terms, params = [], []
        for index, job_id in enumerate(job_ids[start : start + RECENT_CHUNK]):
            query = JobRun.objects.filter(job_id=job_id).order_by("-created_at", "-id").only(*RECENT_FIELDS)
            sql, term_params = query[:per_job].query.get_compiler(connection=connection).as_sql()
            terms.append(f"SELECT * FROM ({sql}) AS recent_{index}")
            params.extend(term_params)
        if terms:
            for run in JobRun.objects.raw(" UNION ALL ".join(terms), params):
                found[run.job_id].append(run)
    for runs in found.values():
        runs.sort(key=lambda r: (r.created_at, r.pk), reverse=True)
    return found


def last_run_warnings(jobs: list[Job]) -> dict[int, list[str]]:
    """The warnings of each job's last run, for the jobs whose last run warned (the count is on
    the Job row, so a fleet without warnings costs no query). A run is found by its job and
    start time (``Job.last_run_at``), on the index jobs_jobrun_job_created's job prefix."""
    warned = [job for job in jobs if job.last_run_warnings and job.last_run_at]
    found: dict[int, list[str]] = {}
    for start in range(0, len(warned), RECENT_CHUNK):
        runs = Q()
        for job in warned[start : start + RECENT_CHUNK]:
            runs |= Q(job_id=job.pk, started_at=job.last_run_at)
        for job_id, warnings in JobRun.objects.filter(runs, status=JobRun.Status.SUCCEEDED).values_list(
            "job_id", "warnings"
        ):
            if warnings:
                found[job_id] = list(warnings)
    return found


def job_rows(
    *, now: datetime, jobs: list[Job] | None = None, recent_per_job: int = RECENT_PER_JOB, warnings: bool = True
) -> list[JobRow]:
    """Every job (or ``jobs``) with its status -- disabled / running / late / failed / idle --
    next run, active run, newest runs and (``warnings``) its last run's warnings."""
    jobs = list(Job.objects.select_related("webhook_handler").order_by("name")) if jobs is None else jobs
    # Each row shows the schedule, read from the job's task's rows: fetched for the page at once
    # (the dashboard, the API's status, `manage.py jobs`), never one query per job.
    prefetch_related_objects(jobs, *SCHEDULE_ROWS)
    active = dict(
        JobRun.objects.filter(status__in=JobRun.ACTIVE_STATUSES, job__in=[j.pk for j in jobs]).values_list(
            "job_id", "id"
        )
    )
    # late_at is on the job row (Job.objects.late): no query, the same rule.
    late = {job.pk for job in jobs if job.enabled and job.late_at is not None and job.late_at <= now}
    recent = recent_runs_by_job([job.pk for job in jobs], recent_per_job) if recent_per_job else {}
    warned = last_run_warnings(jobs) if warnings else {}
    rows = []
    for job in jobs:
        status = job.status(job.pk in active)
        if status in (Job.Status.IDLE, Job.Status.FAILED) and job.pk in late:
            status = LATE
        rows.append(JobRow(job, status, now, active.get(job.pk), recent.get(job.pk, []), warned.get(job.pk, [])))
    return rows


def job_next_run(job: Job, now: datetime) -> datetime | None:
    """The job's next slot after ``now`` (lists call it only for the rows they show)."""
    upcoming = job_next_runs(job, now, count=1)
    return upcoming[0] if upcoming else None


def job_next_runs(job: Job, now: datetime, count: int) -> list[datetime]:
    """The job's next ``count`` slots after ``now`` (none while it is paused or unscheduled)."""
    if not job.enabled or not (job.cron_expression or job.interval_seconds):
        return []
    return upcoming_runs(job.cron_expression, job.interval_seconds, job.timezone, now, count=count)


def totals_since(since: datetime, *, housekeeping: bool = False) -> dict:
    """Runs created since ``since``: how many, succeeded, failed, skipped, success rate; without
    the upkeep jobs' runs (``Job.housekeeping``: a queue drain every 30 s would be most of them)
    unless ``housekeeping``."""
    runs = JobRun.objects.filter(created_at__gte=since)
    if not housekeeping:
        runs = runs.exclude(job__in=Job.objects.housekeeping())
    counts = runs.aggregate(
        runs=Count("id"),
        succeeded=Count("id", filter=Q(status=JobRun.Status.SUCCEEDED)),
        failed=Count("id", filter=Q(status__in=JobRun.FAILURE_STATUSES)),
        skipped=Count("id", filter=Q(status=JobRun.Status.SKIPPED)),
    )
    ended = counts["succeeded"] + counts["failed"]
    counts["success_rate"] = round(100 * counts["succeeded"] / ended, 1) if ended else None
    return counts


def seconds(delta: timedelta | None) -> float | None:
    return round(delta.total_seconds(), 3) if delta is not None else None


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def job_row_json(row: JobRow) -> dict:
    job = row.job
    return {
        "id": job.pk,
        "name": job.name,
        "status": row.status,
        "enabled": job.enabled,
        "handler": job.handler_label,
        "schedule": job.schedule_description,
        "last_run": {
            "at": iso(job.last_run_at),
            "status": job.last_run_status or None,
            "status_text": row.last_run_text or None,
            "duration_seconds": seconds(job.last_duration),
            "warnings": row.warnings,
        },
        "next_run": iso(row.next_run),
        "schedule_problem": row.schedule_problem,
        "active_run_id": row.active_run_id,
        "last_duration_seconds": seconds(job.last_duration),
        "recent_durations_seconds": row.durations,
        "last_error": row.last_error,
        "last_error_run_id": row.last_failure.pk if row.last_failure else None,
        "consecutive_failures": job.consecutive_failures,
        "slow": row.slow,
        "paused": pause_json(job),
    }


def pause_json(job) -> dict | None:
    """Who paused the job, when, why and until when (None while it is active)."""
    if job.enabled:
        return None
    by = job.paused_by
    return {
        "since": iso(job.paused_at),
        "by": by.get_username() if by else None,
        "reason": job.paused_reason,
        "until": iso(job.paused_until),
    }


def acknowledgement_json(run: JobRun) -> dict | None:
    if run.acknowledged_at is None:
        return None
    by = run.acknowledged_by
    return {"at": iso(run.acknowledged_at), "by": by.get_username() if by else None, "note": run.acknowledgement}


def cancel_json(run: JobRun) -> dict | None:
    if run.cancel_requested_at is None:
        return None
    return {"requested_at": iso(run.cancel_requested_at), "by": run.cancelled_by, "reason": run.cancel_reason}


def run_json(run: JobRun, *, full: bool = True) -> dict:
    data = {
        "id": run.pk,
        "job": run.job.name,
        "status": run.status,
        "status_text": run.status_text,
        "warnings": run.warnings,
        "triggered_by": run.triggered_by,
        "attempt": run.attempt,
        "scheduled_for": iso(run.scheduled_for),
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "duration_seconds": seconds(run.duration),
        "skip_reason": run.skip_reason,
        "blocked_by_run_id": run.blocked_by_id,
        # Lineage: the failed run this one retries, and the run that retried this one.
        "retry_of_run_id": run.retry_of_id,
        "retried_as_run_id": run.retried_as(),
        "acknowledged": acknowledgement_json(run),
        "slow": run.slow,
        "dry_run": is_dry_run(run),
        "options": run.options or {},
        "backfill_id": run.backfill_id,
        # A cancel: when it was asked for, by whom and why (null until someone asks); a run that
        # waits for its job's active run to end (overlap "queue one" or "replace") is "behind_active_run".
        "cancel": cancel_json(run),
        "behind_active_run": run.behind_active_run,
        "progress": progress_json(run, timezone.now()),
    }
    if full:
        data.update(summary=run.summary, error=run.error, output=run.output)
    return data
