"""Deleting a job from the admin: a job with runs is kept (its runs are the audit trail) and the page
says so, links its runs and offers to pause it; a job without runs is deleted with its schedule."""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from jobs.models import Job, JobRun

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return " ".join(response.content.decode().split())


def test_it_explains_why_a_job_with_runs_is_kept_and_offers_to_pause_it(staff_client, make_job):
    job = make_job("nightly")
    JobRun.objects.create(job=job, status="failed", triggered_by="manual")

    page = staff_client.get(f"/admin/jobs/job/{job.pk}/delete/")

    words = text(page)
    assert "has runs. A job's runs are its audit trail, so a job that has runs is not deleted here" in words
    assert "JOBS_RUN_RETENTION_DAYS" in words and f"?job__id__exact={job.pk}&amp;housekeeping=1" in words
    assert "Pause instead" in words and "doesn't have permission" not in words
    staff_client.post(f"/admin/jobs/job/{job.pk}/delete/", {"post": "yes"})
    assert Job.objects.filter(pk=job.pk).exists() and JobRun.objects.filter(job=job).exists()

    staff_client.post("/admin/jobs/job/", {"action": "disable", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert not job.enabled


def test_it_deletes_a_job_without_runs_with_its_schedule_after_saying_so(staff_client, make_job):
    job = make_job("nightly")
    task_id = job.periodic_task_id

    page = text(staff_client.get(f"/admin/jobs/job/{job.pk}/delete/"))
    assert "has no runs: deleting it removes the job and its schedule" in page and "Pause instead" in page

    staff_client.post(f"/admin/jobs/job/{job.pk}/delete/", {"post": "yes"})
    assert not Job.objects.filter(pk=job.pk).exists() and not PeriodicTask.objects.filter(pk=task_id).exists()


def test_it_explains_the_same_when_deleting_a_selection(staff_client, make_job):
    ran, idle = make_job("ran"), make_job("idle")
    JobRun.objects.create(job=ran, status="succeeded", triggered_by="manual")
    selection = {"action": "delete_selected", "_selected_action": [ran.pk, idle.pk]}

    page = text(staff_client.post("/admin/jobs/job/", selection))

    assert "Some of these jobs have runs" in page and "ran: <a href" in page and "Pause instead" in page
    staff_client.post("/admin/jobs/job/", {**selection, "post": "yes"})
    assert Job.objects.filter(name__in=["ran", "idle"]).count() == 2
