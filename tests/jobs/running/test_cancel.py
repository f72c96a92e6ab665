"""Cancel a run: a queued run never starts, a running one stops at its next progress step and ends
cancelled with who and why, and nothing of a cancelled run is retried or counted as a failure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.utils import timezone

from jobs.models import AuditEntry, Job, JobOperatorGroup, JobRun
from jobs.running import progress
from jobs.running.cancels import CancelRefused, cancel_request
from jobs.running.execution import command_execute
from jobs.running.maintenance import runs_sweep
from jobs.running.runner import run_claim, run_execute, run_finish, run_trigger

pytestmark = pytest.mark.django_db
Status = JobRun.Status


def queued(job) -> JobRun:
    result = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False)
    assert result.outcome == "queued"
    return result.run


def operator(django_user_model, *codenames: str, name: str = "operator"):
    user = django_user_model.objects.create_user(name, f"{name}@example.com", "pw-operator-1234567", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return django_user_model.objects.get(pk=user.pk)  # a fresh read: permissions are cached per object


def test_it_never_starts_a_queued_run_that_was_cancelled(make_job, superuser):
    run = queued(make_job())
    result = cancel_request(run=run, who=superuser, reason="wrong month")
    assert result.outcome == "cancelled"
    run.refresh_from_db()
    assert run.status == Status.CANCELLED
    assert (run.cancelled_by, run.cancel_reason) == ("boss", "wrong month")
    assert run.finished_at is not None and run.started_at is None
    # The worker's message arrives later: the claim fails and nothing runs.
    assert run_execute(run.pk) is None
    assert JobRun.objects.get(pk=run.pk).status == Status.CANCELLED


def test_it_stops_a_running_command_at_its_next_progress_step(make_job, superuser):
    job = make_job(command="test_sleep_job", config={"seconds": 30}, max_retries=3)
    run = run_claim(queued(job).pk)
    assert cancel_request(run=run, who=superuser, reason="stuck").outcome == "requested"
    # What the heartbeat thread does when it reads the request.
    progress.cancel_requests.add(run.pk)
    try:
        started = timezone.now()
        outcome = command_execute(
            command=job.command,
            config=job.config,
            options={},
            timeout=60,
            output_limit=10_000,
            enforce_timeout=False,
            run_id=run.pk,
        )
    finally:
        progress.cancel_requests.discard(run.pk)
    assert outcome.status == Status.CANCELLED
    assert timezone.now() - started < timedelta(seconds=5)
    run_finish(run=run, outcome=outcome)
    run.refresh_from_db()
    assert run.status == Status.CANCELLED and run.cancelled_by == "boss" and run.cancel_reason == "stuck"
    # Not retried, not a failure: the job's record is as it was.
    assert JobRun.objects.filter(job=job).count() == 1
    job.refresh_from_db()
    assert (job.consecutive_failures, job.last_run_status, job.alert_state) == (0, "", Job.AlertState.OK)


def test_it_rolls_back_what_the_cancelled_command_wrote(make_job, superuser):
    job = make_job(command="test_sleep_job", config={"seconds": 30})
    run = run_claim(queued(job).pk)
    cancel_request(run=run, who=superuser, reason="stop")
    progress.cancel_requests.add(run.pk)
    try:
        from django.db import transaction

        with pytest.raises(progress.RunCancelled), transaction.atomic():
            AuditEntry.objects.create(action="other", object_type="probe", object_repr="written inside")
            with progress.run_context(run.pk):
                progress.cancel_check()
    finally:
        progress.cancel_requests.discard(run.pk)
    assert not AuditEntry.objects.filter(object_type="probe").exists()


def test_it_ends_a_cancelled_run_whose_worker_is_gone_as_cancelled_not_abandoned(make_job, superuser, settings):
    job = make_job(max_retries=2)
    run = run_claim(queued(job).pk)
    cancel_request(run=run, who=superuser, reason="stop")
    silent = timezone.now() - timedelta(seconds=settings.JOBS_HEARTBEAT_TIMEOUT_SECONDS + 5)
    JobRun.objects.filter(pk=run.pk).update(heartbeat_at=silent)
    assert runs_sweep(now=timezone.now())["abandoned"] == 1
    run.refresh_from_db()
    assert run.status == Status.CANCELLED
    assert JobRun.objects.filter(job=job).count() == 1  # no retry


def test_it_refuses_and_audits_a_cancel_without_the_permission(make_job, django_user_model):
    run = queued(make_job())
    viewer = operator(django_user_model, "view_jobrun", "run_job")
    with pytest.raises(CancelRefused, match="jobs.cancel_run"):
        cancel_request(run=run, who=viewer, reason="no")
    assert JobRun.objects.get(pk=run.pk).status == Status.QUEUED
    entry = AuditEntry.objects.get(action=AuditEntry.Action.CANCEL)
    assert entry.refused == "missing permission jobs.cancel_run" and entry.actor == viewer


def test_it_refuses_a_cancel_on_a_job_limited_to_other_groups(make_job, django_user_model):
    job = make_job()
    JobOperatorGroup.objects.create(job=job, group=Group.objects.create(name="billing"))
    run = queued(job)
    holder = operator(django_user_model, "view_jobrun", "cancel_run")
    with pytest.raises(CancelRefused, match="other operator groups"):
        cancel_request(run=run, who=holder, reason="no")


def test_it_audits_an_allowed_cancel_with_its_reason(make_job, django_user_model):
    run = queued(make_job())
    holder = operator(django_user_model, "view_jobrun", "cancel_run")
    cancel_request(run=run, who=holder, reason="duplicate run", address="10.0.0.7")
    entry = AuditEntry.objects.get(action=AuditEntry.Action.CANCEL)
    assert entry.refused == "" and entry.address == "10.0.0.7"
    assert entry.changes["reason"] == [None, "duplicate run"] and entry.changes["outcome"] == [None, "cancelled"]


def test_it_changes_nothing_when_the_run_has_ended(make_job, superuser):
    run = queued(make_job())
    run_execute(run.pk)
    result = cancel_request(run=run, who=superuser, reason="late")
    assert result.outcome == "ended" and "succeeded" in result.message
    assert JobRun.objects.get(pk=run.pk).status == Status.SUCCEEDED


def test_it_cancels_from_the_command_line(make_job, capsys):
    run = queued(make_job())
    call_command("cancel_run", str(run.pk), "--reason", "maintenance")
    run.refresh_from_db()
    assert run.status == Status.CANCELLED and run.cancel_reason == "maintenance"
    assert run.cancelled_by.startswith("manage.py cancel_run")
    assert "cancelled" in capsys.readouterr().out
    assert AuditEntry.objects.filter(action=AuditEntry.Action.CANCEL, refused="").count() == 1
