"""Scenario 7: beat stopped, slots missed, beat started again: each job's catch-up policy is
followed and nothing floods. Seconds stand in for minutes: three jobs every 15 s, a catch-up
tolerance of 3 s, and beat down for three slots.

* ``latest`` -- the most recent missed slot runs once; the older missed slots do not;
* ``skip``   -- the most recent missed slot is a recorded skip (accounted for, not run);
* ``all`` (limit 2) -- the two most recent missed slots run, oldest first, one at a time.

Along the way ``/health/`` reports the stopped beat (heartbeat too old) and recovers, and
every run that started ends.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests.process_group import wait_for, wait_for_log

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.processes,
]
PERIOD = 15
BEAT_ENV = {"JOBS_CATCH_UP_TOLERANCE_SECONDS": "3", "JOBS_BEAT_HEARTBEAT_SECONDS": "1"}


def _boundary_after(moment: datetime, *, skip: int = 0) -> datetime:
    """The (skip+1)-th epoch-aligned slot strictly after ``moment``."""
    seconds = int(moment.timestamp()) // PERIOD * PERIOD + PERIOD * (1 + skip)
    return datetime.fromtimestamp(seconds, tz=UTC)


def _sleep_until(moment: datetime) -> None:
    wait_for(lambda: timezone.now() >= moment, timeout=(moment - timezone.now()).total_seconds() + 5, interval=0.1)


def _slot_rows(job, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    from jobs.models import JobRun

    rows = JobRun.objects.filter(job=job, scheduled_for__gt=start, scheduled_for__lte=end).order_by("scheduled_for")
    return [(run.scheduled_for, run.status) for run in rows]


def test_it_follows_each_jobs_catch_up_policy_after_beat_downtime(processes, start_worker, make_job, settings):
    from jobs.models import Job, JobRun
    from jobs.operations.health import health_report

    jobs = {
        policy: make_job(f"catch-up-{policy}", interval_seconds=PERIOD, catch_up=policy, catch_up_limit=2)
        for policy in Job.CatchUp.values
    }
    start_worker()
    beat = processes.beat(**BEAT_ENV)
    wait_for_log(processes, "beat", "beat: Starting...", timeout=60)
    settings.JOBS_HEALTH_BEAT_MAX_AGE_SECONDS = 5
    wait_for(lambda: "beat" not in health_report()["failed"], timeout=30, message="beat heartbeat")

    processes.kill(beat, signal.SIGTERM)
    stopped = timezone.now()
    last_missed = _boundary_after(stopped, skip=2)  # three slots fall due while beat is down
    _sleep_until(stopped + timedelta(seconds=7))
    assert "beat" in health_report()["failed"]  # the heartbeat went stale

    _sleep_until(last_missed + timedelta(seconds=4))  # restart well past the tolerance
    restarted = timezone.now()
    processes.beat("beat-again", **BEAT_ENV)
    next_slot = last_missed + timedelta(seconds=PERIOD)

    def caught_up() -> bool:
        done = JobRun.objects.filter(job=jobs["all"], scheduled_for__lte=last_missed, status="succeeded")
        return done.filter(scheduled_for__gt=stopped).count() == 2

    wait_for(caught_up, timeout=(next_slot - timezone.now()).total_seconds() - 1, message="all: 2 slots caught up")
    assert timezone.now() < next_slot, "beat took too long to start; slots overlap"
    previous = last_missed - timedelta(seconds=PERIOD)
    assert _slot_rows(jobs["latest"], stopped, last_missed)[0][0] == last_missed
    assert [s for s, _ in _slot_rows(jobs["latest"], stopped, last_missed)] == [last_missed]
    assert _slot_rows(jobs["skip"], stopped, last_missed) == [(last_missed, "skipped")]
    assert "catch-up policy: skip" in JobRun.objects.get(job=jobs["skip"], scheduled_for=last_missed).skip_reason
    assert _slot_rows(jobs["all"], stopped, last_missed) == [(previous, "succeeded"), (last_missed, "succeeded")]
    # No flood: since the restart, exactly what the policies call for was created (1 + 1 + 2).
    assert JobRun.objects.filter(created_at__gte=restarted, scheduled_for__lte=last_missed).count() == 4

    # The next slot runs normally for every policy, and every run that started ends.
    _sleep_until(next_slot + timedelta(seconds=1))
    for job in jobs.values():
        wait_for(
            lambda job=job: JobRun.objects.filter(job=job, scheduled_for=next_slot, status="succeeded").exists(),
            timeout=15,
            message=f"{job.name} runs {next_slot:%H:%M:%S}",
        )
    wait_for(
        lambda: not JobRun.objects.filter(status__in=JobRun.ACTIVE_STATUSES).exists(), timeout=15, message="all ended"
    )
    assert "beat" not in health_report()["failed"]
