"""Deleting a beat task needs a recent login and a confirming POST on every surface: the
dashboard's unschedule and purge, the admin's delete page and its bulk delete action."""

from __future__ import annotations

import time

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from jobs.models import AuditEntry
from jobs.permissions.guards import PASSWORD_AT

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/django_celery_beat/periodictask/"


@pytest.fixture
def task(db):
    """A beat task of another app (no job owns it)."""
    every = CrontabSchedule.objects.create(minute="*/5")
    return PeriodicTask.objects.create(name="celery-cleanup", task="celery.backend_cleanup", crontab=every)


def login_an_hour_ago(client) -> None:
    session = client.session
    session.update({PASSWORD_AT: time.time() - 3600})
    session.save()


def sent_to_reauthenticate(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/dashboard/reauthenticate/")


def test_it_refuses_the_admin_delete_page_and_action_with_an_old_login(staff_client, settings, task):
    settings.RECENT_LOGIN_MINUTES = 15
    login_an_hour_ago(staff_client)

    page = staff_client.get(f"{CHANGELIST}{task.pk}/delete/")
    confirmed = staff_client.post(f"{CHANGELIST}{task.pk}/delete/", {"post": "yes"})
    action = staff_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [task.pk], "post": "yes"})

    assert all(sent_to_reauthenticate(r) for r in (page, confirmed, action))
    assert "next=%2Fadmin%2Fdjango_celery_beat%2Fperiodictask%2F" in confirmed["Location"]
    assert PeriodicTask.objects.filter(pk=task.pk).exists()
    assert not AuditEntry.objects.exists()


def test_it_refuses_to_unschedule_on_the_dashboard_with_an_old_login(staff_client, task):
    login_an_hour_ago(staff_client)
    assert sent_to_reauthenticate(staff_client.post(f"/dashboard/schedule/{task.pk}/unschedule", {"confirm": "yes"}))
    assert PeriodicTask.objects.count() == 1 and not AuditEntry.objects.exists()


def test_it_asks_for_confirmation_before_the_admin_deletes_with_a_fresh_login(staff_client, task):
    first = staff_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [task.pk]})
    assert first.status_code == 200 and "Are you sure" in first.content.decode()
    assert PeriodicTask.objects.filter(pk=task.pk).exists() and not AuditEntry.objects.exists()

    staff_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [task.pk], "post": "yes"})
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_type, entry.actor) == ("delete", "periodictask", staff_client.user)


def test_it_deletes_from_the_admin_delete_page_only_on_its_confirming_post(staff_client, task):
    page = staff_client.get(f"{CHANGELIST}{task.pk}/delete/")
    assert page.status_code == 200 and "Are you sure" in page.content.decode()
    assert PeriodicTask.objects.filter(pk=task.pk).exists()
    staff_client.post(f"{CHANGELIST}{task.pk}/delete/", {"post": "yes"})
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    assert AuditEntry.objects.get().object_id == str(task.pk)


def test_it_shows_a_confirmation_page_before_unscheduling_on_the_dashboard(staff_client, task):
    first = staff_client.post(f"/dashboard/schedule/{task.pk}/unschedule")
    page = first.content.decode()
    assert first.status_code == 200 and "celery-cleanup" in page and 'name="confirm" value="yes"' in page
    assert "csrfmiddlewaretoken" in page
    assert PeriodicTask.objects.filter(pk=task.pk).exists() and not AuditEntry.objects.exists()

    staff_client.post(f"/dashboard/schedule/{task.pk}/unschedule", {"confirm": "yes"})
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    assert AuditEntry.objects.get().action == "delete"
