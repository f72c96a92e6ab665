"""The raw beat schedule page: pause/resume, unschedule, recent login, audit."""

from __future__ import annotations

import time

import pytest
from django.http import HttpRequest
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from jobs.models import AuditEntry
from jobs.permissions.guards import PASSWORD_AT
from tests.jobs.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign_task(db):
    crontab = CrontabSchedule.objects.create(minute="0", hour="4")
    return PeriodicTask.objects.create(name="celery-cleanup", task="celery.backend_cleanup", crontab=crontab)


def make_stale(client) -> None:
    session = client.session
    session[PASSWORD_AT] = time.time() - 3600
    session.save()


def test_it_lists_every_periodic_task_with_its_owner(staff_client, make_job, foreign_task):
    make_job("nightly", cron_expression="0 3 * * *")
    page = staff_client.get("/dashboard/schedule/").content.decode()
    assert "cronhouse:nightly" in page and "celery-cleanup" in page
    assert "At 03:00" in page


def test_it_pauses_and_resumes_a_jobs_task_through_the_job_with_audit(staff_client, make_job):
    job = make_job("nightly")
    staff_client.post(f"/dashboard/schedule/{job.periodic_task_id}/pause")
    job.refresh_from_db()
    assert not job.enabled and not job.periodic_task.enabled
    staff_client.post(f"/dashboard/schedule/{job.periodic_task_id}/resume")
    job.refresh_from_db()
    assert job.enabled and job.periodic_task.enabled
    kinds = list(AuditEntry.objects.order_by("id").values_list("object_type", "changes"))
    assert kinds == [
        ("job", {"paused": [False, True], "reason": [None, ""], "until": [None, None]}),
        ("periodictask", {"enabled": [True, False]}),
        ("job", {"paused": [True, False], "reason": ["", None], "until": [None, None]}),
        ("periodictask", {"enabled": [False, True]}),
    ]


def test_it_asks_for_the_password_again_before_unscheduling(staff_client, foreign_task):
    make_stale(staff_client)
    response = staff_client.post(f"/dashboard/schedule/{foreign_task.pk}/unschedule")
    assert response.status_code == 302 and response["Location"].startswith("/dashboard/reauthenticate/")
    assert PeriodicTask.objects.filter(pk=foreign_task.pk).exists()
    wrong = staff_client.post("/dashboard/reauthenticate/", {"password": "nope", "next": "/dashboard/schedule/"})
    assert wrong.status_code == 200 and "That is not your password." in wrong.content.decode()
    right = staff_client.post("/dashboard/reauthenticate/", {"password": PASSWORD, "next": "/dashboard/schedule/"})
    assert right.status_code == 302 and right["Location"] == "/dashboard/schedule/"
    staff_client.post(f"/dashboard/schedule/{foreign_task.pk}/unschedule", {"confirm": "yes"})
    assert not PeriodicTask.objects.filter(pk=foreign_task.pk).exists()
    failed, entry = AuditEntry.objects.order_by("id")
    assert failed.object_type == "login" and failed.refused == "wrong username or password"
    assert entry.action == "delete" and entry.object_repr.startswith("celery-cleanup")
    assert entry.actor == staff_client.user


def test_it_never_redirects_off_site_after_reauthentication(staff_client):
    response = staff_client.post("/dashboard/reauthenticate/", {"password": PASSWORD, "next": "https://evil.example/"})
    assert response["Location"] == "/dashboard/schedule/"


def test_it_counts_a_fresh_login_as_recent(client, superuser, foreign_task):
    # django-axes checks every authenticate() against its lockouts, so a login needs a request.
    assert client.login(request=HttpRequest(), username=superuser.username, password=PASSWORD)
    client.post(f"/dashboard/schedule/{foreign_task.pk}/unschedule", {"confirm": "yes"})
    assert not PeriodicTask.objects.filter(pk=foreign_task.pk).exists()


def test_it_refuses_to_unschedule_a_jobs_task(staff_client, make_job):
    job = make_job("nightly")
    response = staff_client.post(f"/dashboard/schedule/{job.periodic_task_id}/unschedule", follow=True)
    assert "belongs to job nightly" in response.content.decode()
    assert PeriodicTask.objects.filter(pk=job.periodic_task_id).exists()
    assert not AuditEntry.objects.exists()


def test_it_needs_post_and_csrf_for_actions(make_job, superuser, foreign_task):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(superuser)
    assert browser.get(f"/dashboard/schedule/{foreign_task.pk}/pause").status_code == 405
    assert browser.post(f"/dashboard/schedule/{foreign_task.pk}/pause").status_code == 403
    foreign_task.refresh_from_db()
    assert foreign_task.enabled
