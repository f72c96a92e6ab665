"""Beat's catch-up policies, on a pinned clock (the real-process scenario is in tests/reliability)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobs.models import Job, JobRun
from jobs.scheduling.catch_up import catch_up_backlog, missed_slots
from jobs.scheduling.firing import due_jobs_fire
from tests.jobs.conftest import NOON

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("alert_recipients")]
Status = JobRun.Status
CatchUp = Job.CatchUp
TWELVE = NOON.replace(second=0)  # 12:00:00; beat comes back at 12:00:30, ten minutes after it stopped


@pytest.fixture(autouse=True)
def tolerance(settings):
    settings.JOBS_CATCH_UP_TOLERANCE_SECONDS = 10  # NOON's slot (12:00:00) is 30 s overdue


def scheduled(job) -> list[tuple]:
    runs = JobRun.objects.filter(job=job).order_by("scheduled_for")
    return [(run.scheduled_for, run.status) for run in runs]


def fire(now):
    return due_jobs_fire(now=now)


def test_it_runs_the_most_recent_missed_slot_once_by_default(old_job, settings):
    job = old_job("latest", cron_expression="* * * * *")
    assert job.catch_up == CatchUp.LATEST
    first = fire(NOON)
    again = fire(NOON + timedelta(seconds=1))
    assert (first.queued, again.queued + again.duplicates) == (1, 0)
    assert scheduled(job) == [(TWELVE, Status.QUEUED)]
    assert catch_up_backlog(now=NOON) == 0  # latest never replays older slots


def test_it_records_an_overdue_slot_as_skipped_with_policy_skip(old_job):
    job = old_job("skipper", cron_expression="* * * * *", catch_up=CatchUp.SKIP)
    assert fire(NOON).skipped == 1
    assert scheduled(job) == [(TWELVE, Status.SKIPPED)]
    assert "catch-up policy: skip" in JobRun.objects.get(job=job).skip_reason
    # The next slot, fired on time (within the tolerance), runs as usual.
    assert fire(TWELVE + timedelta(minutes=1, seconds=1)).queued == 1
    assert scheduled(job)[-1] == (TWELVE + timedelta(minutes=1), Status.QUEUED)


def test_it_runs_every_missed_slot_one_at_a_time_up_to_the_limit(old_job):
    job = old_job("all", cron_expression="* * * * *", catch_up=CatchUp.ALL, catch_up_limit=3)
    # Ten slots were missed; the limit keeps the three most recent, run oldest first.
    assert missed_slots(job, NOON) == [TWELVE - timedelta(minutes=2), TWELVE - timedelta(minutes=1), TWELVE]
    fire(NOON)
    assert catch_up_backlog(now=NOON) == 0  # one active run at a time: no flood
    for _ in range(3):
        JobRun.objects.filter(job=job, status=Status.QUEUED).update(status=Status.SUCCEEDED)
        catch_up_backlog(now=NOON)
    assert [slot for slot, _ in scheduled(job)] == [TWELVE - timedelta(minutes=m) for m in (2, 1, 0)]
    assert JobRun.objects.filter(job=job).count() == 3


def test_it_does_not_replay_slots_from_before_a_job_was_re_enabled(old_job):
    job = old_job("all", cron_expression="* * * * *", catch_up=CatchUp.ALL)
    job.enabled = False
    job.save()
    job.enabled = True
    job.save()
    job.schedule_changed_at = NOON - timedelta(minutes=2, seconds=30)
    Job.objects.filter(pk=job.pk).update(schedule_changed_at=job.schedule_changed_at)
    assert missed_slots(job, NOON) == [TWELVE - timedelta(minutes=2), TWELVE - timedelta(minutes=1), TWELVE]
    assert missed_slots(job, NOON)[0] >= job.schedule_changed_at


def test_it_fills_in_defaults_for_a_form_that_leaves_catch_up_out(make_job):
    job = make_job("legacy", catch_up="", catch_up_limit=None)
    assert (job.catch_up, job.catch_up_limit) == (CatchUp.LATEST, 10)


def test_it_fires_an_interval_job_on_its_slots_and_catches_up_when_overdue(old_job):
    job = old_job("every-15s", interval_seconds=15, catch_up=CatchUp.SKIP)
    Job.objects.filter(pk=job.pk).update(next_fire_at=TWELVE)
    # Beat 2 s behind: the 12:00:00 slot is on time; later slots follow one after another.
    assert fire(TWELVE + timedelta(seconds=2)).queued == 1
    assert Job.objects.get(pk=job.pk).next_fire_at == TWELVE + timedelta(seconds=15)
    JobRun.objects.filter(job=job).update(status=Status.SUCCEEDED)
    # Beat away for a minute: the overdue slot follows the policy (skip), at the latest slot.
    assert fire(TWELVE + timedelta(seconds=75)).skipped == 1
    assert scheduled(job)[-1] == (TWELVE + timedelta(seconds=75), Status.SKIPPED)
    assert Job.objects.get(pk=job.pk).next_fire_at == TWELVE + timedelta(seconds=90)
