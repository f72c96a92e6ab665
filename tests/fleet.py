"""A fleet of jobs made in bulk (no per-job save; their schedules written for the batch): what the
list pages see at scale."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from jobs.models import Job, JobRun
from jobs.scheduling.schedules import Schedule, jobs_schedules_create_many


def fleet_create(count: int, *, prefix: str = "bulk", failed_every: int = 0, late_every: int = 0) -> list[Job]:
    """``count`` enabled daily jobs named ``<prefix>-00001``...; every ``failed_every``-th one's last
    run failed, every ``late_every``-th one owes a slot missed an hour ago; each has one run."""
    now = timezone.now()
    jobs = []
    for number in range(1, count + 1):
        failed = bool(failed_every) and number % failed_every == 0
        late = bool(late_every) and number % late_every == 0
        jobs.append(
            Job(
                name=f"{prefix}-{number:05d}",
                description=f"bulk job number {number}",
                command="test_job",
                next_fire_at=now - timedelta(hours=2) if late else now + timedelta(hours=3),
                late_at=now - timedelta(hours=1) if late else now + timedelta(hours=4),
                last_run_at=now - timedelta(minutes=5),
                last_run_status=JobRun.Status.FAILED if failed else JobRun.Status.SUCCEEDED,
                last_duration=timedelta(seconds=number % 60),
                consecutive_failures=1 if failed else 0,
            )
        )
    jobs = Job.objects.bulk_create(jobs, batch_size=500)
    if not jobs or jobs[0].pk is None:  # backends that do not return ids from bulk_create
        jobs = list(Job.objects.filter(name__startswith=f"{prefix}-").order_by("name"))
    # Their schedule: their PeriodicTasks' rows, written for the batch as import_jobs writes them.
    jobs_schedules_create_many(jobs, [Schedule("0 3 * * *")] * len(jobs))
    JobRun.objects.bulk_create(
        (
            JobRun(
                job=job,
                triggered_by=JobRun.Trigger.SCHEDULE,
                status=job.last_run_status,
                started_at=job.last_run_at,
                finished_at=job.last_run_at + job.last_duration,
                duration=job.last_duration,
                error="boom: it broke" if job.last_run_status == JobRun.Status.FAILED else "",
            )
            for job in jobs
        ),
        batch_size=500,
    )
    return jobs
