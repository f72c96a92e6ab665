"""Overlap policies: what a trigger does while a run of its job is active, held by the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.catalog.validation import job_full_clean
from jobs.models import Job, JobRun
from jobs.models.jobs import WAITING_LANE
from jobs.running.maintenance import runs_sweep
from jobs.running.runner import run_claim, run_execute, run_trigger
from jobs.scheduling.firing import due_jobs_fire

pytestmark = pytest.mark.django_db
Status = JobRun.Status
Overlap = Job.Overlap


def trigger(job, **kwargs):
    kwargs.setdefault("triggered_by", JobRun.Trigger.MANUAL)
    return run_trigger(job=job, **kwargs)


def statuses(job) -> list[tuple[str, int]]:
    return sorted(JobRun.objects.filter(job=job).values_list("status", "lane"))


def test_it_skips_a_second_trigger_by_default(make_job):
    job = make_job()
    trigger(job)
    assert trigger(job).outcome == "skipped"
    assert job.overlap == Overlap.SKIP


def test_it_keeps_one_run_waiting_under_queue_one(make_job):
    job = make_job(overlap=Overlap.QUEUE_ONE)
    first = trigger(job)
    run_claim(first.run.pk)
    second, third = trigger(job), trigger(job)
    assert (second.outcome, third.outcome) == ("queued", "skipped")
    assert second.run.lane == WAITING_LANE and second.run.dispatched_at is None
    assert "another run already waits (overlap: queue one)" in third.run.skip_reason
    # Waiting: no worker may claim it while the active run is on.
    assert run_claim(second.run.pk) is None


def test_it_starts_the_waiting_run_when_the_active_one_ends(make_job):
    job = make_job(overlap=Overlap.QUEUE_ONE)
    first = trigger(job, dispatch=False)
    waiting = trigger(job).run
    run_execute(first.run.pk)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.lane) == (Status.QUEUED, 0) and waiting.dispatched_at is not None
    assert run_execute(waiting.pk).status == Status.SUCCEEDED


def test_it_starts_the_waiting_run_when_the_active_one_is_cancelled_while_queued(make_job, superuser):
    from jobs.running.cancels import cancel_request

    job = make_job(overlap=Overlap.QUEUE_ONE)
    first = trigger(job).run
    waiting = trigger(job).run
    cancel_request(run=first, who=superuser, reason="not this one")
    waiting.refresh_from_db()
    assert waiting.lane == 0


def test_it_cancels_a_queued_run_and_starts_the_new_one_under_replace(make_job):
    job = make_job(overlap=Overlap.REPLACE)
    old = trigger(job).run
    new = trigger(job)
    old.refresh_from_db()
    assert old.status == Status.CANCELLED and old.cancelled_by == "overlap policy"
    assert "overlap: replace" in old.cancel_reason
    assert new.outcome == "queued" and new.run.lane == 0


def test_it_asks_a_running_run_to_stop_and_waits_for_it_under_replace(make_job):
    job = make_job(overlap=Overlap.REPLACE)
    old = run_claim(trigger(job).run.pk)
    new = trigger(job).run
    newest = trigger(job).run
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.status == Status.RUNNING and old.cancel_requested_at is not None
    assert new.status == Status.CANCELLED  # replaced while it waited
    assert (newest.status, newest.lane) == (Status.QUEUED, WAITING_LANE)


def test_it_allows_up_to_n_concurrent_runs(make_job):
    job = make_job(overlap=Overlap.ALLOW, max_concurrent=2)
    outcomes = [trigger(job).outcome for _ in range(3)]
    assert outcomes == ["queued", "queued", "skipped"]
    assert statuses(job) == [("queued", 0), ("queued", 1), ("skipped", 0)]


def test_it_holds_the_lanes_in_the_database(make_job):
    job = make_job(overlap=Overlap.QUEUE_ONE)
    JobRun.objects.create(job=job, triggered_by="manual", status=Status.RUNNING, lane=0)
    JobRun.objects.create(job=job, triggered_by="manual", status=Status.QUEUED, lane=WAITING_LANE)
    with pytest.raises(IntegrityError), transaction.atomic():
        JobRun.objects.create(job=job, triggered_by="manual", status=Status.QUEUED, lane=WAITING_LANE)
    with pytest.raises(IntegrityError), transaction.atomic():
        JobRun.objects.create(job=job, triggered_by="manual", status=Status.RUNNING, lane=WAITING_LANE + 0)


def test_it_queues_a_beat_slot_behind_the_active_run_under_queue_one(make_job):
    job = make_job(cron_expression="*/5 * * * *", overlap=Overlap.QUEUE_ONE)
    ten = timezone.now().replace(minute=10, second=0, microsecond=0)
    Job.objects.filter(pk=job.pk).update(next_fire_at=ten)
    due_jobs_fire(now=ten)
    run_claim(JobRun.objects.get(job=job).pk)
    fired = due_jobs_fire(now=ten + timedelta(minutes=5))
    assert (fired.queued, fired.skipped) == (1, 0)
    later = JobRun.objects.get(job=job, scheduled_for=ten + timedelta(minutes=5))
    assert later.lane == WAITING_LANE


def test_it_never_resends_a_waiting_run(make_job):
    job = make_job(overlap=Overlap.QUEUE_ONE)
    run_claim(trigger(job).run.pk)
    waiting = trigger(job).run
    swept = runs_sweep(now=timezone.now() + timedelta(seconds=10))
    assert swept["dispatched"] == 0
    assert JobRun.objects.get(pk=waiting.pk).lane == WAITING_LANE


def test_it_starts_a_waiting_run_left_without_an_active_one_at_the_sweep(make_job):
    job = make_job(overlap=Overlap.QUEUE_ONE)
    active = run_claim(trigger(job).run.pk)
    waiting = trigger(job).run
    # Ended behind the runner's back (a restore, a hand edit): the sweep starts the waiting run.
    JobRun.objects.filter(pk=active.pk).update(status=Status.SUCCEEDED)
    assert runs_sweep(now=timezone.now())["waiting_started"] == 1
    assert JobRun.objects.get(pk=waiting.pk).lane == 0


def test_it_refuses_more_than_one_concurrent_run_without_the_allow_policy(make_job):
    job = Job(name="refused", command="test_job", max_concurrent=3)
    job.cron_expression = "* * * * *"
    with pytest.raises(ValidationError) as refused:
        job_full_clean(job)
    assert "max_concurrent" in refused.value.message_dict


def test_it_retries_a_failure_in_its_own_lane_before_the_waiting_run(make_job):
    job = make_job(command="test_fail_job", overlap=Overlap.QUEUE_ONE, max_retries=1, retry_backoff_seconds=0)
    first = trigger(job, dispatch=False).run
    waiting = trigger(job).run
    run_execute(first.pk)
    retry = JobRun.objects.get(retry_of=first)
    assert (retry.status, retry.lane) == (Status.QUEUED, 0)
    assert JobRun.objects.get(pk=waiting.pk).lane == WAITING_LANE
