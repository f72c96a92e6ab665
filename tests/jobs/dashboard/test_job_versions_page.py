"""The job page lists the job's versions with each change as before -> after, a page at a time,
and restores one: permission-checked, audited, validated like any edit, as a new version."""

from __future__ import annotations

import pytest

from jobs.models import AuditEntry, Job, JobVersion
from jobs.models.versions import changes_by
from tests.jobs.conftest import grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def edited(make_job):
    """A job edited twice by the admin: 0 3 * * * -> 30 4 * * * (v2), then a config (v3)."""
    job = make_job("nightly-report", cron_expression="0 3 * * *")
    with changes_by(None, "admin"):
        job.cron_expression = "30 4 * * *"
        job.save()
        job.config = {"limit": 5}
        job.save()
    return job


def page(client, job: Job, query: str = "") -> str:
    response = client.get(f"/dashboard/jobs/{job.name}/{query}")
    assert response.status_code == 200
    return response.content.decode()


def restore(client, job: Job, number: int):
    return client.post(f"/dashboard/jobs/{job.name}/versions/{number}/restore")


def test_it_shows_each_version_with_a_readable_diff(staff_client, edited):
    html = page(staff_client, edited)

    assert 'id="versions"' in html and 'data-version="3"' in html and 'data-version="1"' in html
    assert "<dt>cron expression</dt><dd><del>0 3 * * *</del> → <ins>30 4 * * *</ins></dd>" in html
    assert "<dt>config</dt><dd><del>{}</del> → <ins>{&quot;limit&quot;: 5}</ins></dd>" in html
    assert "first recorded version" in html


def test_it_pages_a_long_history(staff_client, make_job):
    job = make_job("busy-job", timeout_seconds=100)
    for seconds in range(101, 125):
        job.timeout_seconds = seconds
        job.save()

    first, last = page(staff_client, job), page(staff_client, job, "?versions=3")

    assert first.count("data-version=") == 10 and 'data-version="25"' in first
    assert "page 1 of 3" in first and "?versions=2#versions" in first
    assert last.count("data-version=") == 5 and 'data-version="1"' in last


def test_it_restores_a_version_as_a_new_one_and_audits_it(staff_client, edited):
    response = restore(staff_client, edited, 1)

    assert response.status_code == 302 and response["Location"].endswith("/dashboard/jobs/nightly-report/#versions")
    edited.refresh_from_db()
    assert (edited.cron_expression, edited.config) == ("0 3 * * *", {})
    latest = JobVersion.objects.filter(job=edited).order_by("-number").first()
    assert (latest.number, latest.restored_from, latest.source, latest.actor_label) == (4, 1, "dashboard", "boss")
    assert latest.changes == {"cron_expression": ["30 4 * * *", "0 3 * * *"], "config": [{"limit": 5}, {}]}
    entry = AuditEntry.objects.filter(object_type="job", object_id=str(edited.pk)).latest("at")
    assert (entry.action, entry.refused, entry.changes["restored_version"]) == ("update", "", [None, 1])
    assert "restores v1" in page(staff_client, edited)


def test_it_refuses_a_restore_without_the_change_permission(client, django_user_model, edited):
    reader = grant(django_user_model.objects.create_user("reader", is_staff=True), "jobs.view_job", "jobs.view_jobrun")
    client.force_login(reader)

    assert "Restore</button>" not in page(client, edited)
    assert restore(client, edited, 1).status_code == 403

    edited.refresh_from_db()
    assert edited.cron_expression == "30 4 * * *"
    entry = AuditEntry.objects.filter(object_type="job", object_id=str(edited.pk)).latest("at")
    assert entry.refused == "missing permission jobs.change_job"
    assert JobVersion.objects.filter(job=edited).count() == 3


def test_it_refuses_to_restore_a_version_the_validation_now_rejects(staff_client, edited, settings):
    JobVersion.objects.filter(job=edited, number=1).update(
        snapshot={**JobVersion.objects.get(job=edited, number=1).snapshot, "command": "not_allowed_command"}
    )

    response = restore(staff_client, edited, 1)
    html = page(staff_client, edited)

    assert response.status_code == 302
    assert "Version 1 cannot be restored" in html
    edited.refresh_from_db()
    assert (edited.command, edited.cron_expression) == ("test_job", "30 4 * * *")
    assert JobVersion.objects.filter(job=edited).count() == 3


def test_it_answers_404_for_an_unknown_version(staff_client, edited):
    assert restore(staff_client, edited, 99).status_code == 404


def test_it_versions_the_overlap_policy_and_queue_and_restores_them(staff_client, make_job):
    job = make_job("nightly-report", cron_expression="0 3 * * *")
    with changes_by(None, "admin"):
        job.overlap, job.max_concurrent, job.queue = Job.Overlap.ALLOW, 3, "slow"
        job.save()

    html = page(staff_client, job)
    assert "<dt>queue</dt><dd><del>-</del> → <ins>slow</ins></dd>" in html
    assert "<dt>overlap</dt><dd><del>skip</del> → <ins>allow</ins></dd>" in html
    assert restore(staff_client, job, 1).status_code == 302

    job.refresh_from_db()
    assert (job.overlap, job.max_concurrent, job.queue) == (Job.Overlap.SKIP, 1, "")
