"""Late episodes and slow runs: flagged once, alerted once, recovered once (via notifications)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobRun
from jobs.running.execution import Outcome
from jobs.running.maintenance import jobs_process
from jobs.running.runner import run_claim, run_finish, run_trigger
from jobs.scheduling.firing import due_jobs_fire
from notifications.models import Notification

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("alert_recipients")]
Status = JobRun.Status


@pytest.fixture
def process(django_capture_on_commit_callbacks):
    """jobs_process with its on-commit announcements run (the test holds one transaction)."""

    def call(**kwargs) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            return jobs_process(**kwargs)

    return call


def sent(template: str) -> list[Notification]:
    return list(Notification.objects.filter(template=f"job_alerts/{template}"))


def test_it_alerts_once_per_late_episode_and_once_on_recovery(old_job, process):
    job = old_job("forgotten", cron_expression="* * * * *")
    now = timezone.now()
    first = process(now=now)
    again = process(now=now + timedelta(seconds=30))
    assert (first["late_started"], again["late_started"]) == (1, 0)
    assert len(sent("late")) == 1 and sent("late")[0].recipient == "ops@example.com"
    assert "forgotten" in sent("late")[0].context["job_name"]
    assert Job.objects.get(pk=job.pk).late_since is not None

    due_jobs_fire(now=now + timedelta(seconds=35))  # beat is back: it records the job's slot
    recovered = process(now=now + timedelta(seconds=40))
    assert recovered["late_recovered"] == 1 and len(sent("late_recovered")) == 1
    assert process(now=now + timedelta(seconds=50))["late_recovered"] == 0
    assert Job.objects.get(pk=job.pk).late_since is None


def test_it_opens_a_new_episode_when_the_job_is_late_again(old_job, process):
    old_job("flaky-beat", cron_expression="* * * * *")
    now = timezone.now()
    process(now=now)
    due_jobs_fire(now=now)  # beat records the slot ...
    process(now=now)
    process(now=now + timedelta(minutes=5))  # ... then stops: late for a later slot
    assert len(sent("late")) == 2 and len(sent("late_recovered")) == 1


def test_it_sends_no_late_alert_for_a_job_without_notify_on_failure(old_job, process):
    old_job("quiet", cron_expression="* * * * *", notify_on_failure=False)
    assert process(now=timezone.now())["late_started"] == 1
    assert sent("late") == []


def _running(job, started_ago: float) -> JobRun:
    run = run_trigger(job=job, triggered_by="manual", dispatch=False).run
    run = run_claim(run.pk)
    JobRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(seconds=started_ago))
    run.started_at = timezone.now() - timedelta(seconds=started_ago)
    return run


def test_it_flags_a_slow_run_at_its_end_and_alerts_once(make_job, django_capture_on_commit_callbacks):
    job = make_job("sluggish", expected_duration_seconds=5)
    run = _running(job, started_ago=8)
    with django_capture_on_commit_callbacks(execute=True):
        run_finish(run=run, outcome=Outcome(status=Status.SUCCEEDED), dispatch_retry=False)
    assert JobRun.objects.get(pk=run.pk).slow is True
    assert len(sent("slow")) == 1 and sent("slow")[0].context["finished"] is True


def test_it_does_not_flag_a_run_within_its_expected_duration(make_job, django_capture_on_commit_callbacks):
    job = make_job("brisk", expected_duration_seconds=60)
    run = _running(job, started_ago=1)
    with django_capture_on_commit_callbacks(execute=True):
        run_finish(run=run, outcome=Outcome(status=Status.FAILED, error="boom"), dispatch_retry=False)
    assert JobRun.objects.get(pk=run.pk).slow is False and sent("slow") == []


def test_it_flags_a_still_running_run_once_and_does_not_alert_again_when_it_ends(
    make_job, process, django_capture_on_commit_callbacks
):
    job = make_job("stuck-ish", expected_duration_seconds=5)
    run = _running(job, started_ago=30)
    assert process()["slow_flagged"] == 1
    assert process()["slow_flagged"] == 0
    assert len(sent("slow")) == 1 and sent("slow")[0].context["finished"] is False
    run.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        run_finish(run=run, outcome=Outcome(status=Status.SUCCEEDED), dispatch_retry=False)
    assert JobRun.objects.get(pk=run.pk).slow is True and len(sent("slow")) == 1


def test_it_shows_slow_on_the_dashboard(make_job, client, django_user_model, django_capture_on_commit_callbacks):
    job = make_job("sluggish", expected_duration_seconds=1)
    run = _running(job, started_ago=3)
    with django_capture_on_commit_callbacks(execute=True):
        run_finish(run=run, outcome=Outcome(status=Status.SUCCEEDED), dispatch_retry=False)
    client.force_login(
        django_user_model.objects.create_user("s", password="x-123456789", is_staff=True, is_superuser=True)
    )
    assert client.get("/dashboard/data.json").json()["jobs"][0]["slow"] is True
    assert ">slow</span>" in client.get("/dashboard/").content.decode()
    assert ">slow</span>" in client.get(f"/dashboard/runs/{run.pk}/").content.decode()


def test_it_renders_the_late_and_slow_emails(old_job, process, mailoutbox):
    from django.core.management import call_command

    old_job("forgotten", cron_expression="* * * * *", expected_duration_seconds=1)
    process(now=timezone.now())
    call_command("process_notifications", "--until-empty", verbosity=0)
    assert [m.subject for m in mailoutbox][0].startswith("[Cronhouse] Job forgotten is late")
