"""The database is the clock (jobs.scheduling.clock): beats whose own clocks are off lead, fire and report
by the database's time, and a beat too far off refuses to lead.

A process clock that is off is this process's ``timezone.now`` moved by the skew (``skewed``);
the database's clock is the real one.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobRun, LeaderLease
from jobs.scheduling.catch_up import catch_up_backlog
from jobs.scheduling.clock import db_now
from jobs.scheduling.firing import due_jobs_fire
from jobs.scheduling.leader import Leadership, beat_heartbeat_write
from tests.scheduling import owe_since

pytestmark = pytest.mark.django_db
Status = JobRun.Status


@pytest.fixture
def skewed(monkeypatch):
    """Set this process's clock ``seconds`` off the database's (positive: ahead)."""
    real_now = timezone.now

    def skew(seconds: float) -> None:
        monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=seconds))

    return skew


def holder() -> str:
    return LeaderLease.objects.filter(name="beat").values_list("holder", flat=True).first() or ""


def test_it_keeps_a_live_leaders_lease_from_a_standby_whose_clock_runs_ahead(skewed, caplog):
    leader = Leadership()
    assert leader.lead()
    standby = Leadership()
    skewed(8)
    with caplog.at_level(logging.WARNING, logger="jobs.scheduling.clock"):
        assert not standby.lead()
    assert holder() == leader.holder
    assert "clock offset +8.0 s from the database exceeds JOBS_CLOCK_SKEW_WARN_SECONDS" in caplog.text


def test_it_takes_a_dead_leaders_lease_on_time_even_when_its_clock_runs_behind(skewed, settings):
    settings.JOBS_BEAT_LEASE_SECONDS = 0.5
    leader = Leadership()
    assert leader.lead()
    time.sleep(0.6)  # the leader died: no renewal for longer than the lease
    standby = Leadership()
    skewed(-8)
    assert standby.lead()
    assert holder() == standby.holder


def test_it_refuses_to_lead_when_its_clock_is_too_far_off_and_says_why(skewed, caplog):
    skewed(20)
    beat = Leadership()
    with caplog.at_level(logging.ERROR, logger="jobs.scheduling.clock"):
        assert not beat.lead()  # the lease is free, and still not taken
    assert holder() == ""
    assert beat.offset == pytest.approx(20, abs=0.5)
    assert "clock offset +20.0 s from the database exceeds JOBS_CLOCK_SKEW_MAX_SECONDS=10.0" in caplog.text
    assert "refusing to lead" in caplog.text


def test_it_gives_the_lease_up_when_the_leaders_clock_drifts_too_far(skewed):
    leader = Leadership()
    assert leader.lead()
    skewed(-15)
    assert not leader.lead()
    skewed(0)
    other = Leadership()
    assert other.lead()  # at once: no wait for the lease to expire
    assert holder() == other.holder


def test_it_fires_no_slot_before_its_time_on_the_databases_clock(skewed, make_job):
    job = make_job("every-minute", cron_expression="* * * * *")
    slot = db_now() + timedelta(seconds=5)
    Job.objects.filter(pk=job.pk).update(next_fire_at=slot, late_at=slot + timedelta(minutes=1))
    skewed(20)  # by this beat's own clock the slot is 15 s past
    report = due_jobs_fire()
    assert report.queued == 0
    assert not JobRun.objects.filter(job=job).exists()
    Job.objects.filter(pk=job.pk).update(next_fire_at=db_now() - timedelta(seconds=1))
    assert due_jobs_fire().queued == 1


def test_it_shows_the_leaders_offset_on_health_and_never_a_negative_age(skewed, client, staff_client):
    beat_heartbeat_write(now=db_now(), offset=-18.6)
    skewed(-30)  # the web process's clock: 30 s behind the database's
    beat = client.get("/health/").json()["checks"]["beat"]
    assert 0 <= beat["age_seconds"] < 5
    assert beat["clock_offset_seconds"] == -18.6
    assert beat["ok"] and beat["degraded"]  # slots still fire on time; that host's clock needs fixing
    assert "leader&#x27;s clock offset -18.6 s" in staff_client.get("/dashboard/").content.decode()


# --- a slot that meets a run held up only by the broker ---------------------------------


@pytest.fixture
def unsent_run(make_job):
    """A job whose run for slot S1 was recorded but never sent (the broker was away): returns
    (job, that run, the next slot S2)."""

    def make(catch_up: str):
        first = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
        job = owe_since(
            make_job(f"minutely-{catch_up}", cron_expression="* * * * *", catch_up=catch_up),
            first - timedelta(seconds=30),
        )
        assert due_jobs_fire(now=first + timedelta(seconds=1)).queued == 1
        run = JobRun.objects.get(job=job, scheduled_for=first)
        JobRun.objects.filter(pk=run.pk).update(dispatched_at=None)  # its publish failed
        return job, run, first + timedelta(minutes=1)

    return make


def test_it_supersedes_a_run_that_only_waited_for_the_broker_with_the_next_slot_under_policy_latest(unsent_run):
    job, older, second = unsent_run(Job.CatchUp.LATEST)
    report = due_jobs_fire(now=second + timedelta(seconds=1))
    assert (report.queued, report.skipped) == (1, 0)
    older.refresh_from_db()
    assert older.status == Status.SKIPPED
    assert older.skip_reason.startswith("superseded by slot")
    assert JobRun.objects.get(job=job, scheduled_for=second).status == Status.QUEUED


def test_it_runs_the_next_slot_behind_a_run_that_only_waited_for_the_broker_under_policy_all(unsent_run):
    job, older, second = unsent_run(Job.CatchUp.ALL)
    report = due_jobs_fire(now=second + timedelta(seconds=1))
    assert (report.queued, report.skipped, report.waiting) == (0, 0, 1)
    assert not JobRun.objects.filter(job=job, scheduled_for=second).exists()  # not skipped
    # The broker is back, the older run goes out and ends: the slot that waited runs next.
    JobRun.objects.filter(pk=older.pk).update(status=Status.SUCCEEDED, finished_at=second)
    catch_up_backlog(now=second + timedelta(seconds=40))
    assert JobRun.objects.get(job=job, scheduled_for=second).status == Status.QUEUED
    assert fresh_status(older) == Status.SUCCEEDED


def test_it_still_skips_the_next_slot_behind_a_run_that_was_sent(unsent_run):
    job, older, second = unsent_run(Job.CatchUp.LATEST)
    JobRun.objects.filter(pk=older.pk).update(dispatched_at=second)  # sent; waits for a worker
    assert due_jobs_fire(now=second + timedelta(seconds=1)).skipped == 1
    skipped = JobRun.objects.get(job=job, scheduled_for=second)
    assert (skipped.status, skipped.skip_reason) == (Status.SKIPPED, f"run #{older.pk} is queued")
    assert fresh_status(older) == Status.QUEUED


def fresh_status(run: JobRun) -> str:
    run.refresh_from_db()
    return run.status
