"""People's actions (Run now, retry, acknowledge, the admin's Run now) counted together per user
against JOBS_ACTION_RATE_LIMIT: past it the page says so with a 429 and nothing is recorded."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from jobs.models import AuditEntry, JobRun

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def limit(settings):
    # Per hour: a count that crossed a window boundary mid-test would start again.
    settings.JOBS_ACTION_RATE_LIMIT = "5/h"
    return settings


def logged_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def test_it_answers_the_sixth_run_now_with_429_and_records_no_run(superuser, make_job, limit):
    jobs = [make_job(f"job-{n}") for n in range(6)]
    browser = logged_in(superuser)
    codes = [browser.post(f"/dashboard/jobs/{job.name}/run", **JSON).status_code for job in jobs[:5]]
    assert codes == [202] * 5
    audited = AuditEntry.objects.count()
    refused = browser.post(f"/dashboard/jobs/{jobs[5].name}/run", **JSON)
    assert refused.status_code == 429
    assert refused.json()["ok"] is False and "Too many actions" in refused.json()["message"]
    assert int(refused["Retry-After"]) >= 1
    assert not JobRun.objects.filter(job=jobs[5]).exists()
    assert JobRun.objects.count() == 5
    assert AuditEntry.objects.count() == audited
    page = browser.post(f"/dashboard/jobs/{jobs[5].name}/run")  # without the page's script
    assert page.status_code == 429 and "Too many actions" in page.content.decode()
    assert not JobRun.objects.filter(job=jobs[5]).exists()


def test_it_does_not_limit_another_user_by_the_first_ones_actions(superuser, django_user_model, make_job, limit):
    jobs = [make_job(f"job-{n}") for n in range(7)]
    first = logged_in(superuser)
    assert [first.post(f"/dashboard/jobs/{job.name}/run", **JSON).status_code for job in jobs[:6]] == [202] * 5 + [429]
    second = logged_in(django_user_model.objects.create_superuser("other", "other@example.com", "pw-other-12345678"))
    assert second.post(f"/dashboard/jobs/{jobs[6].name}/run", **JSON).status_code == 202
    assert JobRun.objects.filter(job=jobs[6], triggered_by_user__username="other").exists()


def test_it_counts_retries_and_acknowledgements_with_run_now(superuser, make_job, limit):
    job = make_job("nightly")
    now = timezone.now()
    failed = [
        JobRun.objects.create(job=job, triggered_by="schedule", status=JobRun.Status.FAILED, finished_at=now)
        for _ in range(2)
    ]
    browser = logged_in(superuser)
    for run in failed:
        assert browser.post(f"/dashboard/runs/{run.pk}/acknowledge", {"note": "seen"}).status_code == 302
    assert browser.post(f"/dashboard/jobs/{make_job('a').name}/run", **JSON).status_code == 202
    assert browser.post(f"/dashboard/jobs/{make_job('b').name}/run", **JSON).status_code == 202
    assert browser.post(f"/dashboard/jobs/{make_job('c').name}/run", **JSON).status_code == 202
    runs = JobRun.objects.count()
    assert browser.post(f"/dashboard/runs/{failed[0].pk}/retry").status_code == 429
    assert browser.post("/dashboard/failures/act", {"action": "retry", "run": [failed[1].pk]}).status_code == 429
    assert JobRun.objects.count() == runs


def test_it_says_so_in_the_admin_and_runs_nothing_past_the_limit(superuser, make_job, limit):
    jobs = [make_job(f"job-{n}") for n in range(6)]
    browser = logged_in(superuser)
    for job in jobs[:5]:
        browser.post(f"/dashboard/jobs/{job.name}/run", **JSON)
    response = browser.post("/admin/jobs/job/", {"action": "run_now", "_selected_action": [jobs[5].pk]}, follow=True)
    assert "Too many actions" in response.content.decode()
    assert not JobRun.objects.filter(job=jobs[5]).exists()
