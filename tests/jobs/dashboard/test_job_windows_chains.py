"""The job page shows which of the next runs a blackout window holds, and what the job waits for;
the admin attaches windows and chains only to the jobs a person may change."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from jobs.models import AuditEntry, BlackoutWindow, JobDependency, JobOperatorGroup

pytestmark = pytest.mark.django_db


def test_it_marks_the_next_runs_inside_a_window_and_names_the_upstreams(staff_client, make_job):
    charges = make_job("charges", cron_expression="0 * * * *")
    statements = make_job("statements", cron_expression="0 * * * *")
    JobDependency.objects.create(job=statements, upstream=charges)
    soon = timezone.now() + timedelta(hours=2)
    window = BlackoutWindow.objects.create(
        name="db-upgrade",
        starts_on=soon.date(),
        starts_at=time(soon.hour),
        ends_on=(soon + timedelta(hours=1)).date(),
        ends_at=time((soon + timedelta(hours=1)).hour),
    )
    window.jobs.set([statements])
    page = staff_client.get(f"/dashboard/jobs/{statements.name}/").content.decode()
    assert page.count("inside window db-upgrade: skipped") == 1
    assert 'id="waits-for">charges' in page
    plain = staff_client.get(f"/dashboard/jobs/{charges.name}/").content.decode()
    assert "Windows and chain" not in plain


def test_it_offers_in_the_window_admin_only_the_jobs_the_user_may_change(client, django_user_model, make_job):
    ops = Group.objects.create(name="ops")
    mine = make_job("mine")
    theirs = make_job("theirs")
    JobOperatorGroup.objects.create(job=theirs, group=ops)
    user = django_user_model.objects.create_user("editor", password="pw-123456789", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_blackoutwindow", "change_blackoutwindow", "change_job"])
    )
    client.force_login(user)
    data = {
        "name": "christmas",
        "kind": "yearly",
        "starts_on": "2026-12-25",
        "starts_at": "00:00",
        "ends_on": "2026-12-26",
        "ends_at": "00:00",
        "jobs": [theirs.pk],
    }
    refused = client.post("/admin/jobs/blackoutwindow/add/", data)
    assert refused.status_code == 200 and not BlackoutWindow.objects.exists()
    added = client.post("/admin/jobs/blackoutwindow/add/", {**data, "jobs": [mine.pk]})
    assert added.status_code == 302
    window = BlackoutWindow.objects.get()
    assert (window.starts_on, list(window.jobs.all())) == (date(2000, 12, 25), [mine])
    assert AuditEntry.objects.filter(action="create").count() == 1


def test_it_refuses_a_chain_that_would_wait_on_itself(staff_client, make_job):
    first = make_job("first")
    second = make_job("second")
    JobDependency.objects.create(job=second, upstream=first)
    response = staff_client.post("/admin/jobs/jobdependency/add/", {"job": first.pk, "upstream": second.pk})
    assert response.status_code == 200
    assert "already waits, directly or not, for this one" in response.content.decode()
    assert JobDependency.objects.count() == 1
