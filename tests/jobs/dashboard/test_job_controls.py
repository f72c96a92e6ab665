"""Pause and resume on the dashboard (its list and the job page): with a reason and an optional end,
through the access rule, audited, and limited like every person's action, the schedule page's too."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs.models import AuditEntry, JobRun

pytestmark = pytest.mark.django_db


def pause_url(job) -> str:
    return reverse("jobs:job-pause", args=[job.name])


def resume_url(job) -> str:
    return reverse("jobs:job-resume", args=[job.name])


def test_it_pauses_until_a_time_and_shows_who_why_and_until_when(staff_client, make_job):
    job = make_job("nightly")
    until = (timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)
    fields = {"reason": "ledger migration", "until": until.strftime("%Y-%m-%dT%H:%M")}
    response = staff_client.post(pause_url(job), fields)
    assert response.status_code == 302 and response["Location"] == reverse("jobs:job", args=[job.name])
    job.refresh_from_db()
    assert not job.enabled and job.paused_until == until and job.paused_by == staff_client.user
    entry = AuditEntry.objects.get()
    assert entry.action == "disable" and entry.changes["reason"] == [None, "ledger migration"]
    page = staff_client.get(reverse("jobs:job", args=[job.name])).content.decode()
    assert '<span class="badge s-paused" id="job-status">paused</span>' in page
    assert "ledger migration" in page and until.strftime("%Y-%m-%d %H:%M:00 UTC") in page and ">boss<" in page
    assert "Resume" in page and "pause</td>" in page  # the actions table names it in the one vocabulary
    listing = staff_client.get(reverse("jobs:dashboard")).content.decode()
    assert "paused by boss: ledger migration, until" in listing and 'aria-label="Resume nightly"' in listing


def test_it_resumes_from_the_list_and_the_job_owes_only_later_slots(staff_client, make_job):
    job = make_job("nightly")
    staff_client.post(pause_url(job), {"reason": "x"})
    response = staff_client.post(resume_url(job), {"next": "/dashboard/?status=paused"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/?status=paused"
    job.refresh_from_db()
    assert job.enabled and job.next_fire_at > timezone.now() and job.paused_reason == ""
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == ["disable", "enable"]


def test_it_asks_for_a_reason_and_a_future_end(staff_client, make_job):
    job = make_job("nightly")
    assert staff_client.post(pause_url(job), {"reason": ""}).status_code == 400
    past = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = staff_client.post(pause_url(job), {"reason": "x", "until": past})
    assert response.status_code == 400 and "must be in the future" in response.content.decode()
    job.refresh_from_db()
    assert job.enabled and not AuditEntry.objects.exists()


def test_it_refuses_pause_and_resume_to_someone_who_may_not_and_audits_it(client, django_user_model, make_job):
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-123456", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_jobrun"))
    client.force_login(viewer)
    job = make_job("nightly")
    assert client.post(pause_url(job), {"reason": "x"}).status_code == 403
    assert client.post(resume_url(job)).status_code == 403
    job.refresh_from_db()
    assert job.enabled
    assert [entry.refused != "" for entry in AuditEntry.objects.all()] == [True, True]
    page = client.get(reverse("jobs:job", args=[job.name])).content.decode()
    assert "Pause…" not in page


def test_it_runs_a_paused_job_by_hand(staff_client, make_job):
    job = make_job("nightly")
    staff_client.post(pause_url(job), {"reason": "x"})
    response = staff_client.post(reverse("jobs:job-run", args=[job.name]), HTTP_ACCEPT="application/json")
    assert response.status_code == 202
    assert JobRun.objects.get(job=job).status == JobRun.Status.QUEUED


@pytest.fixture
def limit(settings):
    settings.JOBS_ACTION_RATE_LIMIT = "2/h"
    return settings


def test_it_limits_pause_and_resume_per_user_and_records_nothing_past_it(superuser, make_job, limit):
    job = make_job("nightly")
    browser = Client()
    browser.force_login(superuser)
    assert browser.post(pause_url(job), {"reason": "x"}).status_code == 302
    assert browser.post(resume_url(job)).status_code == 302
    audited = AuditEntry.objects.count()
    refused = browser.post(pause_url(job), {"reason": "third"})
    assert refused.status_code == 429 and "Too many actions" in refused.content.decode()
    job.refresh_from_db()
    assert job.enabled and AuditEntry.objects.count() == audited


def test_it_limits_the_schedule_pages_pause_and_resume_and_records_nothing_past_it(superuser, make_job, limit):
    job = make_job("nightly")
    browser = Client()
    browser.force_login(superuser)
    task = job.periodic_task_id
    assert browser.post(f"/dashboard/schedule/{task}/pause").status_code == 302
    assert browser.post(f"/dashboard/schedule/{task}/resume").status_code == 302
    audited = AuditEntry.objects.count()
    refused = browser.post(f"/dashboard/schedule/{task}/pause")
    assert refused.status_code == 429 and "Too many actions" in refused.content.decode()
    job.refresh_from_db()
    assert job.enabled and AuditEntry.objects.count() == audited


def test_it_names_the_state_paused_in_the_admin(staff_client, make_job):
    job = make_job("nightly")
    staff_client.post(pause_url(job), {"reason": "x"})
    page = staff_client.get("/admin/jobs/job/").content.decode()
    assert "By paused" in page and 'value="disable">Pause<' in page and 'value="enable">Resume<' in page
    assert "Enabled" not in page
    assert "nightly" in staff_client.get("/admin/jobs/job/?paused=yes").content.decode()
    assert "nightly" not in staff_client.get("/admin/jobs/job/?paused=no").content.decode()
