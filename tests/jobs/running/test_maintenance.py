from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import JobRun
from jobs.running import runner
from jobs.running.maintenance import jobs_process

pytestmark = pytest.mark.django_db
Status = JobRun.Status


@pytest.fixture
def sent(monkeypatch):
    """Records publishes instead of talking to a broker: this file tests which runs are chosen."""
    calls = []
    monkeypatch.setattr(runner.current_app, "send_task", lambda name, **kw: calls.append(kw["args"][0]))
    return calls


def running_run(job, *, started_ago: float, heartbeat_ago: float) -> JobRun:
    now = timezone.now()
    return JobRun.objects.create(
        job=job,
        triggered_by=JobRun.Trigger.SCHEDULE,
        status=Status.RUNNING,
        started_at=now - timedelta(seconds=started_ago),
        heartbeat_at=now - timedelta(seconds=heartbeat_ago),
        worker_host="gone",
        worker_pid=4242,
    )


def test_it_abandons_a_run_whose_heartbeat_stopped_and_frees_the_job(make_job, sent, settings):
    job = make_job()
    run = running_run(job, started_ago=60, heartbeat_ago=settings.JOBS_HEARTBEAT_TIMEOUT_SECONDS + 5)
    assert jobs_process()["abandoned"] == 1
    run.refresh_from_db()
    assert run.status == Status.ABANDONED
    assert "stopped sending heartbeats" in run.error
    assert runner.run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).queued


def test_it_abandons_a_run_past_its_timeout_plus_grace_even_with_a_heartbeat(make_job, sent, settings):
    job = make_job(timeout_seconds=10)
    run = running_run(job, started_ago=10 + settings.JOBS_REAPER_GRACE_SECONDS + 1, heartbeat_ago=1)
    jobs_process()
    run.refresh_from_db()
    assert run.status == Status.ABANDONED and "past the job's timeout" in run.error


def test_it_leaves_a_healthy_running_run_alone(make_job, sent):
    job = make_job()
    run = running_run(job, started_ago=20, heartbeat_ago=1)
    assert jobs_process()["abandoned"] == 0
    run.refresh_from_db()
    assert run.status == Status.RUNNING


def test_it_retries_an_abandoned_run_when_the_job_allows(make_job, sent, settings):
    job = make_job(max_retries=1, retry_backoff_seconds=30)
    run = running_run(job, started_ago=60, heartbeat_ago=settings.JOBS_HEARTBEAT_TIMEOUT_SECONDS + 5)
    result = jobs_process()
    retry = JobRun.objects.get(retry_of=run)
    assert result["retried"] == 1
    assert retry.status == Status.QUEUED and retry.attempt == 2


def test_it_dispatches_queued_runs_whose_message_never_left(make_job, sent, settings):
    old = timezone.now() - timedelta(minutes=2)
    lost = JobRun.objects.create(job=make_job("lost"), triggered_by=JobRun.Trigger.API)
    fresh = JobRun.objects.create(job=make_job("fresh"), triggered_by=JobRun.Trigger.API)
    resent = JobRun.objects.create(job=make_job("resent"), triggered_by=JobRun.Trigger.API)
    waiting = JobRun.objects.create(
        job=make_job("waiting"),
        triggered_by=JobRun.Trigger.RETRY,
        attempt=2,
        not_before=timezone.now() + timedelta(minutes=5),
    )
    long_ago = timezone.now() - timedelta(seconds=settings.JOBS_REDISPATCH_AFTER_SECONDS + 1)
    JobRun.objects.filter(pk__in=[lost.pk, resent.pk, waiting.pk]).update(created_at=old)
    JobRun.objects.filter(pk=resent.pk).update(dispatched_at=long_ago)
    assert jobs_process()["dispatched"] == 2
    assert sorted(sent) == sorted([lost.pk, resent.pk])
    assert fresh.pk not in sent and waiting.pk not in sent
    lost.refresh_from_db()
    assert lost.dispatched_at is not None and lost.status == Status.QUEUED


def test_it_keeps_a_run_queued_when_the_broker_is_down(make_job, monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(runner.current_app, "send_task", refuse)
    run = JobRun.objects.create(job=make_job(), triggered_by=JobRun.Trigger.API)
    assert runner.run_resend(run_id=run.pk) is False
    run.refresh_from_db()
    assert run.status == Status.QUEUED and run.dispatched_at is None
