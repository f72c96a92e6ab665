"""Pause with a reason and an optional end: the job has no next slot, is never late, resumes by itself
at its end (beat's housekeeping), and a pause changed meanwhile is not ended by the old end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from jobs.models import AuditEntry, Job
from jobs.running.maintenance import lateness_process
from jobs.scheduling.firing import due_jobs_fire
from jobs.scheduling.pauses import PauseRefused, job_pause, job_resume, pauses_end

pytestmark = pytest.mark.django_db


def test_it_pauses_until_a_time_and_resumes_by_itself_then(make_job, superuser):
    job = make_job("nightly", cron_expression="0 3 * * *")
    now = timezone.now()
    until = now + timedelta(hours=2)
    assert job_pause(job=job, who=superuser, reason="bank holiday", until=until, now=now)
    job.refresh_from_db()
    assert not job.enabled and job.next_fire_at is None and job.late_at is None
    assert (job.paused_by, job.paused_reason, job.paused_until) == (superuser, "bank holiday", until)
    assert not job.periodic_task.enabled
    assert not Job.objects.late(now + timedelta(days=3)).exists()

    assert pauses_end(now=until - timedelta(seconds=1)) == 0
    assert pauses_end(now=until) == 1
    job.refresh_from_db()
    assert job.enabled and job.next_fire_at is not None and job.next_fire_at > until
    assert (job.paused_by, job.paused_reason, job.paused_until, job.paused_at) == (None, "", None, None)
    job.periodic_task.refresh_from_db()
    assert job.periodic_task.enabled
    ended = AuditEntry.objects.filter(action="enable").get()
    assert ended.actor is None and ended.actor_label == "system"
    assert ended.changes["reason"] == ["bank holiday", None]
    assert pauses_end(now=until + timedelta(hours=1)) == 0


def test_it_does_not_end_a_pause_that_was_changed_after_it_was_read(make_job, superuser):
    job = make_job("nightly")
    now = timezone.now()
    job_pause(job=job, who=superuser, reason="first", until=now + timedelta(minutes=5), now=now)
    later = now + timedelta(hours=1)
    job_pause(job=job, who=superuser, reason="longer", until=later, now=now)
    assert pauses_end(now=now + timedelta(minutes=10)) == 0
    job.refresh_from_db()
    assert not job.enabled and job.paused_reason == "longer"


def test_it_records_no_slot_while_paused(make_job, superuser):
    job = make_job("every-minute")
    job_pause(job=job, who=superuser, reason="migration")
    report = due_jobs_fire(now=timezone.now() + timedelta(minutes=5))
    assert (report.queued, report.skipped) == (0, 0)
    assert not job.runs.exists()


def test_it_refuses_an_end_in_the_past_and_a_user_without_the_toggle_permission(make_job, superuser, staff_user):
    job = make_job("nightly")
    with pytest.raises(PauseRefused, match="in the future"):
        job_pause(job=job, who=superuser, reason="x", until=timezone.now() - timedelta(minutes=1))
    with pytest.raises(PauseRefused) as refused:
        job_pause(job=job, who=staff_user, reason="x")
    assert refused.value.forbidden
    job.refresh_from_db()
    assert job.enabled
    entry = AuditEntry.objects.get()
    assert entry.action == "disable" and entry.get_action_display() == "pause" and entry.refused


def test_it_resumes_by_hand_once_and_says_so_the_second_time(make_job, superuser):
    job = make_job("nightly")
    job_pause(job=job, who=superuser, reason="x")
    assert job_resume(job=job, who=superuser) is True
    assert job_resume(job=job, who=superuser) is False
    assert AuditEntry.objects.filter(action="enable").count() == 1


def test_it_clears_the_pause_when_a_form_ticks_the_job_active_again(make_job, superuser):
    job = make_job("nightly")
    job_pause(job=job, who=superuser, reason="x", until=timezone.now() + timedelta(days=1))
    job.refresh_from_db()
    job.enabled = True
    job.save()
    job.refresh_from_db()
    assert job.enabled and job.paused_until is None and job.paused_reason == "" and job.paused_by is None


def test_it_ends_a_late_episode_quietly_when_the_job_is_paused(make_job, superuser):
    job = make_job("every-minute")
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(next_fire_at=now - timedelta(hours=1), late_at=now - timedelta(minutes=50))
    assert lateness_process(now=now)["late_started"] == 1
    job_pause(job=job, who=superuser, reason="upstream down")
    assert lateness_process(now=now + timedelta(minutes=1)) == {"late": 0, "late_started": 0, "late_recovered": 0}
    job.refresh_from_db()
    assert job.late_since is None


def test_it_pauses_quietly_from_the_admin_and_the_schedule_page_and_names_who(make_job, superuser, client):
    job = make_job("every-minute")
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(next_fire_at=now - timedelta(hours=1), late_at=now - timedelta(minutes=50))
    lateness_process(now=now)
    client.force_login(superuser)
    changelist = "/admin/jobs/job/"
    client.post(changelist, {"action": "disable", "_selected_action": [job.pk]})
    assert lateness_process(now=now + timedelta(minutes=1))["late_recovered"] == 0
    job.refresh_from_db()
    assert not job.enabled and job.paused_by == superuser and job.paused_at is not None and job.late_since is None
    assert not PeriodicTask.objects.get(pk=job.periodic_task_id).enabled
    client.post(changelist, {"action": "enable", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.enabled and job.paused_by is None and job.paused_at is None

    assert client.post(f"/dashboard/schedule/{job.periodic_task_id}/pause").status_code == 302
    job.refresh_from_db()
    assert not job.enabled and job.paused_by == superuser
    paused = AuditEntry.objects.filter(object_id=str(job.pk), action=AuditEntry.Action.DISABLE, refused="")
    assert paused.count() == 2  # one per pause, whichever page it came from


def test_it_is_resumed_by_the_leading_beats_housekeeping(make_job, superuser, monkeypatch):
    from celery import current_app

    from jobs.scheduling import beat
    from jobs.scheduling.beat import LeaderDatabaseScheduler

    job = make_job("nightly", cron_expression="0 3 * * *")
    job_pause(job=job, who=superuser, reason="holiday", until=timezone.now() + timedelta(hours=1))
    Job.objects.filter(pk=job.pk).update(paused_until=timezone.now() - timedelta(seconds=1))  # its end has come
    monkeypatch.setattr(beat, "close_old_connections", lambda: None)  # it would end the test's transaction
    scheduler = LeaderDatabaseScheduler(app=current_app, lazy=True)  # no beat loop needed
    try:
        scheduler._maintain()
        job.refresh_from_db()  # before close(), which closes the database connection
    finally:
        scheduler.close()
    assert job.enabled and job.paused_until is None and job.next_fire_at is not None
