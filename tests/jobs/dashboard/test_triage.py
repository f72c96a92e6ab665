"""Triage on the failures page: a retry and its failure linked both ways on every surface, a failure
leaving the list once retried or acknowledged, filters in the address, a selection retried at once
(each run checked and audited), housekeeping runs left out unless asked for, and a fresh install
without the test fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from jobs.models import AuditEntry, Job, JobOperatorGroup, JobRun
from jobs.running.runner import run_execute, run_trigger
from tests.jobs.conftest import PASSWORD, grant

pytestmark = pytest.mark.django_db
Trigger = JobRun.Trigger


def ran(job) -> JobRun:
    return run_execute(run_trigger(job=job, triggered_by=Trigger.MANUAL, dispatch=False).run.pk)


def failure(job, *, status=JobRun.Status.FAILED, at=None, error="boom") -> JobRun:
    run = JobRun.objects.create(job=job, triggered_by=Trigger.SCHEDULE, status=status, error=error)
    if at is not None:
        JobRun.objects.filter(pk=run.pk).update(created_at=at)
    return run


def shown(client, query: str = "") -> set[int]:
    page = client.get(f"/dashboard/failures/{query}").content.decode()
    return {run.pk for run in JobRun.objects.all() if f'data-run="{run.pk}"' in page}


@pytest.fixture
def operator(django_user_model, make_job):
    """A Billing operator (sees and runs jobs open to all and Billing's), and a job limited to
    another team, which the operator may neither see nor run."""
    billing, other = Group.objects.create(name="Billing"), Group.objects.create(name="Notify")
    user = grant(
        django_user_model.objects.create_user("ops", password=PASSWORD, is_staff=True),
        "jobs.view_job",
        "jobs.view_jobrun",
        "jobs.run_job",
    )
    user.groups.add(billing)
    hidden = make_job("other-team-job", command="test_fail_job")
    JobOperatorGroup.objects.create(job=hidden, group=other)
    return user, hidden


def test_it_links_an_automatic_retry_and_its_failure_both_ways_on_every_surface(
    staff_client, make_job, django_capture_on_commit_callbacks
):
    job = make_job("flaky", command="test_fail_job", max_retries=1, retry_backoff_seconds=600)
    with django_capture_on_commit_callbacks(execute=True):
        failed = ran(job)
    retry = JobRun.objects.get(retry_of=failed)
    failed.refresh_from_db()
    assert failed.triaged_at is not None  # out of the failures list's index
    assert failed.pk not in shown(staff_client)

    failed_page = staff_client.get(f"/dashboard/runs/{failed.pk}/").content.decode()
    assert f'retried as <a href="/dashboard/runs/{retry.pk}/"' in failed_page
    assert "Retry with the same options" not in failed_page  # it was retried already
    retry_page = staff_client.get(f"/dashboard/runs/{retry.pk}/").content.decode()
    assert f'retry of <a href="/dashboard/runs/{failed.pk}/"' in retry_page

    assert staff_client.get(f"/api/runs/{failed.pk}").json()["retried_as_run_id"] == retry.pk
    assert staff_client.get(f"/api/runs/{retry.pk}").json()["retry_of_run_id"] == failed.pk

    admin_failed = staff_client.get(f"/admin/jobs/jobrun/{failed.pk}/change/").content.decode()
    assert f'retried as <a href="/admin/jobs/jobrun/{retry.pk}/change/"' in admin_failed
    admin_retry = staff_client.get(f"/admin/jobs/jobrun/{retry.pk}/change/").content.decode()
    assert f'retry of <a href="/admin/jobs/jobrun/{failed.pk}/change/"' in admin_retry

    history = staff_client.get("/dashboard/jobs/flaky/").content.decode()
    assert f'retried as <a href="/dashboard/runs/{retry.pk}/"' in history


def test_it_records_a_retry_by_hand_as_the_failures_retry_and_offers_no_second(staff_client, make_job):
    job = make_job("broken", command="test_fail_job")
    failed = ran(job)
    assert failed.pk in shown(staff_client)

    response = staff_client.post(f"/dashboard/runs/{failed.pk}/retry")
    retry = JobRun.objects.get(retry_of=failed)
    assert response.status_code == 302 and response["Location"] == f"/dashboard/runs/{retry.pk}/"
    assert retry.triggered_by == Trigger.MANUAL and retry.attempt == 1
    failed.refresh_from_db()
    assert failed.triaged_at is not None
    assert failed.pk not in shown(staff_client)
    page = staff_client.get(f"/dashboard/runs/{failed.pk}/").content.decode()
    assert f'retried as <a href="/dashboard/runs/{retry.pk}/"' in page and "Retry with the same options" not in page
    entry = AuditEntry.objects.filter(object_type="job", changes__repeats_run=[None, failed.pk]).get()
    assert entry.refused == "" and entry.actor == staff_client.user

    JobRun.objects.filter(pk=retry.pk).update(status=JobRun.Status.SUCCEEDED)
    again = staff_client.post(f"/dashboard/runs/{failed.pk}/retry", follow=True).content.decode()
    assert f"was already retried as #{retry.pk}" in again
    assert JobRun.objects.filter(job=job).count() == 2


def test_it_takes_an_acknowledged_failure_off_the_list_and_audits_who_when_and_why(staff_client, make_job):
    failed = ran(make_job("broken", command="test_fail_job"))
    refused = staff_client.post(f"/dashboard/runs/{failed.pk}/acknowledge", {"note": "  "}, follow=True)
    assert "Say in a note why" in refused.content.decode() and failed.pk in shown(staff_client)

    response = staff_client.post(f"/dashboard/runs/{failed.pk}/acknowledge", {"note": "upstream outage, fixed"})
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.acknowledged_by == staff_client.user and failed.acknowledgement == "upstream outage, fixed"
    assert failed.acknowledged_at is not None and failed.triaged_at == failed.acknowledged_at
    assert failed.pk not in shown(staff_client)
    page = staff_client.get(f"/dashboard/runs/{failed.pk}/").content.decode()
    assert "by boss: upstream outage, fixed" in page
    entry = AuditEntry.objects.get(changes__acknowledged_run=[None, failed.pk])
    assert entry.refused == "" and entry.actor == staff_client.user
    assert entry.changes["note"] == [None, "upstream outage, fixed"]
    acknowledged = staff_client.get(f"/api/runs/{failed.pk}").json()["acknowledged"]
    assert acknowledged["by"] == "boss" and acknowledged["note"] == "upstream outage, fixed"


def test_it_refuses_acknowledging_to_a_user_without_the_run_rule_and_audits_it(client, roles):
    failed = failure(roles["payouts"])
    client.force_login(roles["users"]["reader"])  # sees the job, may not run it
    response = client.post(f"/dashboard/runs/{failed.pk}/acknowledge", {"note": "not mine to say"})
    assert response.status_code == 403
    failed.refresh_from_db()
    assert failed.acknowledged_at is None and failed.pk in shown(client)
    assert "Retry selected" not in client.get("/dashboard/failures/").content.decode()
    entry = AuditEntry.objects.get(changes__acknowledged_run=[None, failed.pk])
    assert entry.actor_label == "reader" and entry.refused == "missing permission jobs.run_job"


def test_it_retries_a_selection_each_run_checked_and_audited(client, operator, make_job):
    user, hidden = operator
    failures = [failure(make_job(f"job-{n}", command="test_fail_job")) for n in range(3)]
    refused = failure(hidden)
    client.force_login(user)
    page = client.get("/dashboard/failures/").content.decode()
    assert all(f'name="run" value="{run.pk}"' in page for run in failures)

    selection = [run.pk for run in failures] + [refused.pk]
    response = client.post(
        "/dashboard/failures/act", {"action": "retry", "run": selection, "next": "/dashboard/failures/"}, follow=True
    )
    text = response.content.decode()
    retries = JobRun.objects.filter(retry_of__in=failures)
    assert retries.count() == 3 and not JobRun.objects.filter(retry_of=refused).exists()
    assert all(f"#{run.pk}: job-" in text and "queued" in text for run in failures)
    assert f"#{refused.pk}: not allowed" in text and "other-team-job" not in text
    audited = AuditEntry.objects.filter(actor=user, action=AuditEntry.Action.RUN)
    assert audited.filter(refused="").count() == 3
    assert audited.exclude(refused="").get().changes["repeats_run"] == [None, refused.pk]
    assert shown(client) == set()  # each retried failure left the list


def test_it_acknowledges_a_selection_with_one_note(staff_client, make_job):
    runs = [failure(make_job(f"job-{n}", command="test_fail_job")) for n in range(2)]
    data = {"action": "acknowledge", "run": [run.pk for run in runs], "note": "known flaky"}
    staff_client.post("/dashboard/failures/act", data)
    assert JobRun.objects.filter(acknowledgement="known flaky", acknowledged_by=staff_client.user).count() == 2
    assert shown(staff_client) == set()


def test_it_filters_failures_by_job_app_status_and_day_in_the_address(staff_client, make_job, monkeypatch):
    broken = make_job("broken", command="test_fail_job")
    charges = make_job("generate-charges", command="generate_charges")
    day = datetime(2026, 11, 20, 9, tzinfo=UTC)
    old = failure(broken, at=day - timedelta(days=3))
    timed_out = failure(broken, status=JobRun.Status.TIMED_OUT, at=day)
    billing = failure(charges, at=day + timedelta(days=1))

    assert shown(staff_client) == {old.pk, timed_out.pk, billing.pk}
    assert shown(staff_client, "?job=broken") == {old.pk, timed_out.pk}
    assert shown(staff_client, "?app=billing") == {billing.pk}
    assert shown(staff_client, "?status=timed_out") == {timed_out.pk}
    assert shown(staff_client, "?since=2026-11-20") == {timed_out.pk, billing.pk}
    assert shown(staff_client, "?since=2026-11-18&until=2026-11-20") == {timed_out.pk}
    assert shown(staff_client, "?job=broken&status=failed") == {old.pk}

    # A page at a time, the filters kept by the link to the older failures.
    monkeypatch.setattr("jobs.status.failures.FAILURES_PAGE_SIZE", 1)
    page = staff_client.get("/dashboard/failures/?job=broken").content.decode()
    assert f'href="?job=broken&amp;before={timed_out.pk}"' in page
    assert shown(staff_client, f"?job=broken&before={timed_out.pk}") == {old.pk}


def test_it_refreshes_the_failures_page_from_its_own_address(staff_client, make_job):
    broken = make_job("broken", command="test_fail_job")
    first = failure(broken)
    data = staff_client.get("/dashboard/failures/?job=broken", HTTP_ACCEPT="application/json").json()
    assert data["ids"] == [first.pk] and f'data-run="{first.pk}"' in data["rows_html"]
    second = failure(broken)
    failure(make_job("elsewhere", command="test_fail_job"))
    data = staff_client.get("/dashboard/failures/?job=broken", HTTP_ACCEPT="application/json").json()
    assert data["ids"] == [second.pk, first.pk] and data["updated"].startswith("Updated")


def test_it_leaves_housekeeping_runs_out_of_lists_and_totals_unless_asked(staff_client, make_job):
    drain = make_job("process-notifications", command="process_notifications", housekeeping=True)
    work = make_job("generate-charges", command="generate_charges")
    drained = [JobRun.objects.create(job=drain, triggered_by=Trigger.SCHEDULE, status="succeeded") for _ in range(3)]
    drain_failure = failure(drain)
    work_failure = failure(work)

    assert shown(staff_client) == {work_failure.pk}
    assert shown(staff_client, "?housekeeping=1") == {work_failure.pk, drain_failure.pk}

    assert staff_client.get("/dashboard/data.json").json()["totals"]["runs"] == 1
    assert staff_client.get("/dashboard/data.json?housekeeping=1").json()["totals"]["runs"] == 5
    dashboard = staff_client.get("/dashboard/").content.decode()
    assert "Include them" in dashboard and ">housekeeping</span>" in dashboard

    admin_list = staff_client.get("/admin/jobs/jobrun/").content.decode()
    assert f"/admin/jobs/jobrun/{drained[0].pk}/change/" not in admin_list
    assert f"/admin/jobs/jobrun/{work_failure.pk}/change/" in admin_list
    included = staff_client.get("/admin/jobs/jobrun/?housekeeping=1").content.decode()
    assert f"/admin/jobs/jobrun/{drained[0].pk}/change/" in included


def test_it_seeds_no_fixture_job_on_a_fresh_install_and_marks_the_upkeep_jobs():
    call_command("seed_jobs", verbosity=0)
    assert not Job.objects.filter(command__in=["test_job", "test_fail_job", "test_sleep_job"]).exists()
    upkeep = set(Job.objects.housekeeping().values_list("name", flat=True))
    assert {"process-jobs", "process-notifications", "purge-logs", "audit-log-cleanup"} <= upkeep
    assert not Job.objects.filter(name="generate-charges", housekeeping=True).exists()


def test_it_marks_an_existing_upkeep_job_as_housekeeping_on_the_next_seed(make_job):
    make_job("process-jobs", command="process_jobs")
    call_command("seed_jobs", verbosity=0)
    assert Job.objects.get(name="process-jobs").housekeeping is True


def test_it_reads_the_failures_page_in_as_many_queries_for_many_failures_as_for_one(staff_client, make_job):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff_client.get("/dashboard/failures/").status_code == 200
        return len(captured)

    jobs = [make_job(f"job-{n}", command="test_fail_job") for n in range(20)]
    retried = failure(jobs[0])
    JobRun.objects.create(job=jobs[0], triggered_by=Trigger.MANUAL, status="succeeded", retry_of=retried)
    failure(jobs[1])
    few = queries()
    for job in jobs:
        failure(job)
    assert queries() == few
