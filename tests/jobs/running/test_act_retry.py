"""Retrying a failed run and running a slot again from the run page: a new manual run with the
same options, as of the old run's slot, under the one-active-run rule and the run permission."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from jobs.models import AuditEntry, JobRun
from jobs.running.runner import run_execute

pytestmark = pytest.mark.django_db

SLOT = datetime(2025, 2, 1, 6, 0, tzinfo=UTC)
Status = JobRun.Status


def old_run(job, status=Status.FAILED, **fields) -> JobRun:
    fields.setdefault("triggered_by", JobRun.Trigger.SCHEDULE)
    return JobRun.objects.create(job=job, status=status, error="boom" if status == Status.FAILED else "", **fields)


def test_it_retries_a_failed_slot_run_as_of_its_slot(staff_client, make_job):
    job = make_job("nightly")
    failed = old_run(job, scheduled_for=SLOT, options={"dry_run": True})
    page = staff_client.get(reverse("jobs:run", args=[failed.pk]))
    assert b"Retry with the same options" in page.content and b"Run this slot again" in page.content

    response = staff_client.post(reverse("jobs:run-retry", args=[failed.pk]))

    again = JobRun.objects.exclude(pk=failed.pk).get()
    assert response.status_code == 302 and response["Location"] == reverse("jobs:run", args=[again.pk])
    assert (again.status, again.triggered_by, again.triggered_by_user) == (
        Status.QUEUED,
        JobRun.Trigger.MANUAL,
        staff_client.user,
    )
    assert again.options == {"dry_run": True, "as_of": SLOT.isoformat()}
    finished = run_execute(again.pk)
    assert finished.status == Status.SUCCEEDED
    assert finished.summary["as_of"] == SLOT.isoformat() and finished.summary["dry_run"] is True
    entry = AuditEntry.objects.get(action=AuditEntry.Action.RUN)
    assert entry.changes["run"] == [None, again.pk] and not entry.refused


def test_it_runs_a_succeeded_slot_again_as_of_that_slot(staff_client, make_job):
    job = make_job("nightly")
    done = old_run(job, Status.SUCCEEDED, scheduled_for=SLOT)
    page = staff_client.get(reverse("jobs:run", args=[done.pk]))
    assert b"Run this slot again" in page.content and b"Retry with the same options" not in page.content

    staff_client.post(reverse("jobs:run-slot-again", args=[done.pk]))

    again = JobRun.objects.exclude(pk=done.pk).get()
    assert run_execute(again.pk).summary["as_of"] == SLOT.isoformat()


def test_it_records_a_skip_when_the_job_already_has_an_active_run(staff_client, make_job):
    job = make_job("nightly")
    failed = old_run(job)
    busy = old_run(job, Status.RUNNING, triggered_by=JobRun.Trigger.MANUAL)

    response = staff_client.post(reverse("jobs:run-retry", args=[failed.pk]), follow=True)

    skipped = JobRun.objects.get(status=Status.SKIPPED)
    assert skipped.blocked_by == busy
    assert f"run #{busy.pk} is running" in response.content.decode()
    assert JobRun.objects.filter(status__in=JobRun.ACTIVE_STATUSES).count() == 1


def test_it_refuses_to_retry_a_run_that_did_not_fail(staff_client, make_job):
    done = old_run(make_job("nightly"), Status.SUCCEEDED, triggered_by=JobRun.Trigger.MANUAL)
    page = staff_client.get(reverse("jobs:run", args=[done.pk]))
    assert b"Retry with the same options" not in page.content and b"Run this slot again" not in page.content

    response = staff_client.post(reverse("jobs:run-retry", args=[done.pk]), follow=True)

    assert "only a failed, timed out or abandoned run is retried" in response.content.decode()
    assert JobRun.objects.count() == 1


def test_it_answers_403_and_audits_a_user_without_the_run_permission(client, staff_user, make_job):
    staff_user.user_permissions.add(Permission.objects.get(codename="view_jobrun"))
    client.force_login(staff_user)
    failed = old_run(make_job("nightly"))
    page = client.get(reverse("jobs:run", args=[failed.pk]))
    assert page.status_code == 200 and b"Retry with the same options" not in page.content

    response = client.post(reverse("jobs:run-retry", args=[failed.pk]))

    assert response.status_code == 403
    assert JobRun.objects.count() == 1
    assert "jobs.run_job" in AuditEntry.objects.get(action=AuditEntry.Action.RUN).refused


def test_it_accepts_only_post(staff_client, make_job):
    failed = old_run(make_job("nightly"))
    assert staff_client.get(reverse("jobs:run-retry", args=[failed.pk])).status_code == 405
    assert JobRun.objects.count() == 1
