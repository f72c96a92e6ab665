from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from jobs.catalog.validation import job_full_clean
from jobs.models import Job, JobRun
from jobs.models.jobs import MAX_JITTER_SECONDS
from jobs.running import runner
from jobs.running.maintenance import runs_to_dispatch
from jobs.running.runner import run_claim
from jobs.scheduling.firing import due_jobs_fire

pytestmark = pytest.mark.django_db
Status = JobRun.Status


@pytest.fixture
def sent(monkeypatch):
    """Each publish's keyword arguments instead of a broker's message."""
    calls = []
    monkeypatch.setattr(runner.current_app, "send_task", lambda name, **kw: calls.append(kw))
    return calls


def next_hour():
    return (timezone.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)


def test_it_gives_each_job_an_offset_within_its_jitter_that_survives_a_restart(make_job):
    jobs = [make_job(f"spread-{index}", jitter_seconds=60) for index in range(40)]
    offsets = [job.jitter_offset for job in jobs]
    assert all(timedelta(0) <= offset < timedelta(seconds=60) for offset in offsets)
    # Read afresh (another process, a restart): the same offset, from the job's id alone.
    assert [Job.objects.get(pk=job.pk).jitter_offset for job in jobs] == offsets
    # Jobs due at the same instant are spread over the window, not bunched.
    assert len({int(offset.total_seconds() // 6) for offset in offsets}) >= 7
    assert make_job("no-jitter").jitter_offset == timedelta(0)


def test_it_refuses_a_jitter_beyond_its_bound(make_job):
    with pytest.raises(ValidationError) as refused:
        make_job(jitter_seconds=MAX_JITTER_SECONDS + 1)
    assert "jitter_seconds" in refused.value.message_dict


def test_it_starts_a_jittered_run_after_its_slot_and_keeps_the_slot_as_its_as_of(
    make_job, sent, django_capture_on_commit_callbacks
):
    job = make_job(cron_expression="0 * * * *", jitter_seconds=600)
    slot = next_hour()
    Job.objects.filter(pk=job.pk).update(next_fire_at=slot)
    with django_capture_on_commit_callbacks(execute=True):
        assert due_jobs_fire(now=slot).queued == 1
    run = JobRun.objects.get(job=job)
    assert run.scheduled_for == slot
    assert run.not_before == slot + job.jitter_offset
    # The message waits for it (Celery's countdown), and no worker claims it earlier.
    assert len(sent) == 1
    assert sent[0]["countdown"] == pytest.approx((run.not_before - timezone.now()).total_seconds(), abs=5)
    assert run_claim(run.pk) is None
    # Nor is it taken for a lost message while it waits.
    assert not runs_to_dispatch(timezone.now()).filter(pk=run.pk).exists()


def test_it_starts_a_caught_up_slot_of_a_jittered_job_at_once(make_job):
    # A daily slot half an hour ago, missed (beat was down): its jitter of at most 10 min is over.
    slot = (timezone.now() - timedelta(minutes=30)).replace(second=0, microsecond=0)
    job = make_job(cron_expression=f"{slot.minute} {slot.hour} * * *", jitter_seconds=600)
    Job.objects.filter(pk=job.pk).update(next_fire_at=slot - timedelta(days=1))
    due_jobs_fire()
    run = JobRun.objects.get(job=job, status=Status.QUEUED)
    assert (run.scheduled_for, run.not_before) == (slot, None)
    assert run_claim(run.pk) is not None


def test_it_publishes_a_run_to_its_jobs_queue(make_job, sent, settings, django_capture_on_commit_callbacks):
    settings.JOBS_QUEUES = ["slow"]
    slow = make_job("slow-job", queue="slow")
    plain = make_job("plain-job")
    with django_capture_on_commit_callbacks(execute=True):
        runner.run_trigger(job=slow, triggered_by=JobRun.Trigger.MANUAL)
        runner.run_trigger(job=plain, triggered_by=JobRun.Trigger.MANUAL)
    assert [call["queue"] for call in sent] == ["slow", None]
    assert all(call["countdown"] is None for call in sent)


def test_it_refuses_a_queue_that_is_not_configured(make_job, settings):
    settings.JOBS_QUEUES = ["slow"]
    job = Job(name="odd-queue", command="test_job", queue="reports")
    job.cron_expression = "* * * * *"
    with pytest.raises(ValidationError) as refused:
        job_full_clean(job)
    assert "Queue 'reports' is not configured" in refused.value.message_dict["queue"][0]
    assert "celery, slow" in refused.value.message_dict["queue"][0]
    job.queue = "slow"
    job_full_clean(job)


def test_it_resends_a_delayed_message_only_long_after_its_start_not_after_its_send(make_job, settings):
    settings.JOBS_REDISPATCH_AFTER_SECONDS = 120
    now = timezone.now()
    sent_long_ago = now - timedelta(seconds=900)
    waited = JobRun.objects.create(
        job=make_job("jittered"),
        triggered_by=JobRun.Trigger.SCHEDULE,
        dispatched_at=sent_long_ago,
        not_before=now - timedelta(seconds=10),
    )
    lost = JobRun.objects.create(
        job=make_job("lost"),
        triggered_by=JobRun.Trigger.SCHEDULE,
        dispatched_at=sent_long_ago,
        not_before=now - timedelta(seconds=200),
    )
    assert list(runs_to_dispatch(now).values_list("pk", flat=True)) == [lost.pk]
    assert waited.status == Status.QUEUED
