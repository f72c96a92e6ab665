"""Cancel from the dashboard's run page and from the admin (its run list's action and its run page)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from jobs.models import AuditEntry, Job, JobRun
from jobs.running.runner import run_claim, run_trigger

pytestmark = pytest.mark.django_db
Status = JobRun.Status


def queued(job) -> JobRun:
    return run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run


def logged_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def test_it_offers_cancel_on_an_active_runs_page_and_cancels_it(superuser, make_job):
    run = queued(make_job())
    browser = logged_in(superuser)
    page = browser.get(f"/dashboard/runs/{run.pk}/").content.decode()
    assert 'id="cancel-form"' in page
    response = browser.post(f"/dashboard/runs/{run.pk}/cancel", {"reason": "wrong options"}, follow=True)
    assert "cancelled: it will not start" in response.content.decode()
    run.refresh_from_db()
    assert (run.status, run.cancelled_by, run.cancel_reason) == (Status.CANCELLED, "boss", "wrong options")
    page = browser.get(f"/dashboard/runs/{run.pk}/").content.decode()
    assert 'id="cancel-form"' not in page and "by boss: wrong options" in page


def test_it_shows_a_running_run_as_stopping_once_asked(superuser, make_job):
    run = run_claim(queued(make_job()).pk)
    browser = logged_in(superuser)
    browser.post(f"/dashboard/runs/{run.pk}/cancel", {"reason": "stuck"})
    page = browser.get(f"/dashboard/runs/{run.pk}/").content.decode()
    assert "stopping" in page and "stuck" in page
    assert (
        browser.get(f"/dashboard/runs/{run.pk}/", HTTP_ACCEPT="application/json").json()["cancel"]["reason"] == "stuck"
    )


def test_it_answers_403_without_the_permission(django_user_model, make_job):
    user = django_user_model.objects.create_user("viewer", password="pw-viewer-123456", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_jobrun", "view_job", "run_job"]))
    run = queued(make_job())
    browser = logged_in(user)
    assert 'id="cancel-form"' not in browser.get(f"/dashboard/runs/{run.pk}/").content.decode()
    assert browser.post(f"/dashboard/runs/{run.pk}/cancel", {"reason": "x"}).status_code == 403
    assert JobRun.objects.get(pk=run.pk).status == Status.QUEUED


def test_it_shows_the_overlap_policy_on_the_jobs_page(superuser, make_job):
    make_job("fan-out", overlap=Job.Overlap.ALLOW, max_concurrent=3)
    page = logged_in(superuser).get("/dashboard/jobs/fan-out/").content.decode()
    assert "Allow up to 3 concurrent runs" in page


def test_it_cancels_the_selected_runs_from_the_admins_run_list(superuser, make_job):
    first, second = queued(make_job("one")), queued(make_job("two"))
    browser = logged_in(superuser)
    browser.post(
        "/admin/jobs/jobrun/", {"action": "cancel_runs", "_selected_action": [first.pk, second.pk]}, follow=True
    )
    assert set(JobRun.objects.values_list("status", flat=True)) == {Status.CANCELLED}
    assert AuditEntry.objects.filter(action=AuditEntry.Action.CANCEL, refused="").count() == 2


def test_it_cancels_from_the_admins_run_page(superuser, make_job):
    run = queued(make_job())
    browser = logged_in(superuser)
    page = browser.get(f"/admin/jobs/jobrun/{run.pk}/change/").content.decode()
    assert 'id="cancel-run"' in page
    browser.post(f"/admin/jobs/jobrun/{run.pk}/cancel/", {"reason": "from the admin"})
    run.refresh_from_db()
    assert run.status == Status.CANCELLED and run.cancel_reason == "from the admin"
    assert 'id="cancel-run"' not in browser.get(f"/admin/jobs/jobrun/{run.pk}/change/").content.decode()


def test_it_edits_the_overlap_policy_in_the_admin_through_the_one_validation(superuser, make_job):
    from tests.jobs.conftest import job_form_data

    job = make_job()
    browser = logged_in(superuser)
    refused = browser.post(f"/admin/jobs/job/{job.pk}/change/", job_form_data(job, overlap="skip", max_concurrent=4))
    assert refused.status_code == 200 and "More than one concurrent run" in refused.content.decode()
    browser.post(f"/admin/jobs/job/{job.pk}/change/", job_form_data(job, overlap="allow", max_concurrent=4))
    job.refresh_from_db()
    assert (job.overlap, job.max_concurrent) == ("allow", 4)
