from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.models import Job, JobRun
from jobs.running.runner import JobDisabled, run_execute, run_trigger
from jobs.scheduling.firing import due_jobs_fire

pytestmark = pytest.mark.django_db
Status = JobRun.Status
Trigger = JobRun.Trigger


def trigger(job, **kwargs):
    kwargs.setdefault("triggered_by", Trigger.MANUAL)
    return run_trigger(job=job, dispatch=False, **kwargs)


def test_it_records_a_second_trigger_as_skipped_naming_the_active_run(make_job):
    job = make_job()
    first = trigger(job)
    second = trigger(job, triggered_by=Trigger.API)
    assert first.outcome == "queued" and first.run.status == Status.QUEUED
    assert second.outcome == "skipped"
    assert second.run.status == Status.SKIPPED
    assert second.run.blocked_by_id == first.run.pk
    assert f"run #{first.run.pk} is queued" in second.run.skip_reason


def test_it_holds_one_active_run_per_job_in_the_database(make_job):
    job = make_job()
    JobRun.objects.create(job=job, triggered_by=Trigger.MANUAL, status=Status.RUNNING)
    with pytest.raises(IntegrityError), transaction.atomic():
        JobRun.objects.create(job=job, triggered_by=Trigger.MANUAL, status=Status.QUEUED)


def test_it_makes_one_run_when_two_beats_fire_the_same_slot(make_job):
    job = make_job(cron_expression="*/5 * * * *")
    slot = timezone.now().replace(minute=10, second=0, microsecond=0)
    Job.objects.filter(pk=job.pk).update(next_fire_at=slot)
    first = due_jobs_fire(now=slot + timedelta(milliseconds=300))
    # A second beat that read the job before the first moved it on records the same slot.
    Job.objects.filter(pk=job.pk).update(next_fire_at=slot)
    second = due_jobs_fire(now=slot + timedelta(milliseconds=800))
    assert (first.queued, second.queued, second.duplicates) == (1, 0, 1)
    assert list(JobRun.objects.filter(job=job).values_list("scheduled_for", flat=True)) == [slot]


def test_it_records_the_next_slot_as_skipped_while_the_previous_run_is_still_active(make_job):
    job = make_job(cron_expression="*/5 * * * *")
    ten = timezone.now().replace(minute=10, second=0, microsecond=0)
    Job.objects.filter(pk=job.pk).update(next_fire_at=ten)
    due_jobs_fire(now=ten)
    assert due_jobs_fire(now=ten + timedelta(minutes=5)).skipped == 1
    later = JobRun.objects.get(job=job, scheduled_for=ten + timedelta(minutes=5))
    first = JobRun.objects.get(job=job, scheduled_for=ten)
    assert later.status == Status.SKIPPED and later.skip_reason == f"run #{first.pk} is queued"


def test_it_refuses_an_api_run_of_a_paused_job_runs_one_by_hand_and_records_a_racing_tick(make_job):
    job = make_job(enabled=False)
    with pytest.raises(JobDisabled):
        run_trigger(job=job, triggered_by=Trigger.API)
    tick = run_trigger(job=job, triggered_by=Trigger.SCHEDULE, scheduled_for=timezone.now().replace(second=0))
    assert tick.outcome == "skipped" and tick.run.skip_reason == "job is paused"
    by_hand = trigger(job)
    assert by_hand.queued and by_hand.run.status == Status.QUEUED


def test_it_runs_a_job_and_records_summary_output_duration_and_statistics(make_job):
    job = make_job()
    run = run_execute(trigger(job).run.pk)
    assert run.status == Status.SUCCEEDED
    assert run.summary["ok"] is True
    assert "test-job ran as of" in run.output
    assert run.duration is not None and run.started_at <= run.finished_at
    assert run.worker_pid and run.worker_host
    job.refresh_from_db()
    assert job.last_run_status == Status.SUCCEEDED
    assert job.last_success_at == run.finished_at
    assert job.consecutive_failures == 0


def test_it_passes_as_of_and_dry_run_to_the_command(make_job):
    job = make_job()
    run = run_execute(trigger(job, options={"as_of": "2025-02-01T00:00:00+00:00", "dry_run": True}).run.pk)
    assert run.summary == {"ok": True, "as_of": "2025-02-01T00:00:00+00:00", "dry_run": True}


def test_it_runs_a_scheduled_run_as_of_its_slot(make_job):
    job = make_job(cron_expression="0 6 1 * *")
    slot = timezone.now().replace(year=2025, month=2, day=1, hour=6, minute=0, second=0, microsecond=0)
    run = run_execute(trigger(job, triggered_by=Trigger.SCHEDULE, scheduled_for=slot).run.pk)
    assert run.summary["as_of"] == slot.isoformat()


def test_it_runs_a_scheduled_plain_django_command_without_as_of(make_job):
    job = make_job("cleanup-sessions", command="clearsessions")
    run = run_execute(trigger(job, triggered_by=Trigger.SCHEDULE, scheduled_for=timezone.now()).run.pk)
    assert run.status == Status.SUCCEEDED, run.error


def test_it_runs_djangos_clearsessions_unchanged_as_a_job(make_job):
    Session.objects.create(session_key="x" * 32, session_data="", expire_date=timezone.now() - timedelta(days=1))
    job = make_job("cleanup-sessions", command="clearsessions")
    run = run_execute(trigger(job).run.pk)
    assert run.status == Status.SUCCEEDED
    assert run.summary == {}
    assert not Session.objects.exists()


def test_it_fails_a_run_whose_command_raises_and_keeps_the_error(make_job):
    job = make_job(command="test_fail_job")
    run = run_execute(trigger(job).run.pk)
    assert run.status == Status.FAILED
    assert "test-fail-job failed on purpose" in run.error
    assert "about to fail" in run.output
    job.refresh_from_db()
    assert job.consecutive_failures == 1 and job.last_run_status == Status.FAILED


def test_it_fails_a_run_whose_command_does_not_exist(make_job):
    job = make_job()
    Job.objects.filter(pk=job.pk).update(command="no_such_command")  # no form would save it
    job.refresh_from_db()
    run = run_execute(trigger(job).run.pk)
    assert run.status == Status.FAILED
    assert "Unknown command" in run.error


def test_it_times_out_a_run_past_its_timeout(make_job):
    job = make_job(command="test_sleep_job", config={"seconds": 5}, timeout_seconds=1)
    run = run_execute(trigger(job).run.pk, enforce_timeout=True)
    assert run.status == Status.TIMED_OUT
    assert run.duration < timedelta(seconds=3)
    assert "Timed out after 1 s" in run.error


def test_it_retries_with_exponential_backoff_and_counts_the_final_failure_once(make_job):
    job = make_job(command="test_fail_job", max_retries=2, retry_backoff_seconds=10)
    run = run_execute(trigger(job).run.pk, dispatch_retry=False)
    attempts, waits = [run], []
    while (retry := JobRun.objects.filter(retry_of=attempts[-1]).first()) is not None:
        # The retry waits its backoff and holds the job's active slot meanwhile.
        assert retry.status == Status.QUEUED and retry.triggered_by == Trigger.RETRY
        assert trigger(job).outcome == "skipped"
        waits.append((retry.not_before - attempts[-1].finished_at).total_seconds())
        attempts.append(retry)
        JobRun.objects.filter(pk=retry.pk).update(not_before=timezone.now())
        attempts[-1] = run_execute(retry.pk, dispatch_retry=False)
    for attempt in attempts:
        attempt.refresh_from_db()
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert [a.status for a in attempts] == [Status.FAILED] * 3
    assert [round(w) for w in waits] == [10, 20]
    job.refresh_from_db()
    assert job.consecutive_failures == 1


def test_it_does_not_run_a_claimed_run_twice(make_job):
    job = make_job()
    run_id = trigger(job).run.pk
    assert run_execute(run_id) is not None
    assert run_execute(run_id) is None  # a duplicate message finds nothing to claim
    assert JobRun.objects.get(pk=run_id).status == Status.SUCCEEDED


def test_it_waits_for_a_retry_to_be_due_before_running_it(make_job):
    job = make_job()
    run = JobRun.objects.create(
        job=job, triggered_by=Trigger.RETRY, attempt=2, not_before=timezone.now() + timedelta(minutes=5)
    )
    assert run_execute(run.pk) is None
    assert JobRun.objects.get(pk=run.pk).status == Status.QUEUED


def test_it_logs_only_the_runs_that_were_committed(make_job, caplog, django_capture_on_commit_callbacks):
    job = make_job()
    caplog.set_level("INFO", logger="jobs.running.runner")
    with django_capture_on_commit_callbacks(execute=True):
        # A leader that loses its session midway through a burst: the burst is rolled back.
        with pytest.raises(RuntimeError), transaction.atomic():
            trigger(job)
            raise RuntimeError("connection lost")
        kept = trigger(job)
    queued = [record.getMessage() for record in caplog.records if "run queued" in record.getMessage()]
    assert queued == [f"run queued job={job.name} run={kept.run.pk} trigger=manual slot=None"]
    assert JobRun.objects.filter(job=job).count() == 1
