"""The staff dashboard: who may see it, what the jobs table says, Run now, history, queries."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.models import Job, JobRun
from tests.scheduling import owe_since

pytestmark = pytest.mark.django_db
Status = JobRun.Status


def finished_run(job, status=Status.SUCCEEDED, seconds=1.5, error="", **fields):
    now = timezone.now()
    return JobRun.objects.create(
        job=job,
        triggered_by="schedule",
        status=status,
        started_at=now - timedelta(seconds=seconds),
        finished_at=now,
        duration=timedelta(seconds=seconds),
        error=error,
        **fields,
    )


@pytest.mark.parametrize("url", ["/dashboard/", "/dashboard/data.json", "/dashboard/schedule/"])
def test_it_sends_anonymous_and_non_staff_users_to_the_login_page(client, django_user_model, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    client.force_login(django_user_model.objects.create_user("tenant", password="pw-123456789"))
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_it_shows_every_job_with_its_status(staff_client, make_job):
    make_job("idle-job")
    running = make_job("running-job")
    JobRun.objects.create(job=running, triggered_by="manual", status=Status.RUNNING)
    failed = make_job("failed-job")
    finished_run(failed, Status.FAILED, error="CommandError: ledger locked\nTraceback ...")
    Job.objects.filter(pk=failed.pk).update(last_run_status="failed", last_run_at=timezone.now())
    make_job("disabled-job", enabled=False)
    owe_since(make_job("late-job", cron_expression="0 * * * *"), timezone.now() - timedelta(days=2))

    rows = {row["name"]: row for row in staff_client.get("/dashboard/data.json").json()["jobs"]}
    assert {name: row["status"] for name, row in rows.items()} == {
        "idle-job": "idle",
        "running-job": "running",
        "failed-job": "failed",
        "disabled-job": "paused",
        "late-job": "late",
    }
    assert rows["failed-job"]["last_error"] == "CommandError: ledger locked"
    page = staff_client.get("/dashboard/").content.decode()
    for status in ("idle", "running", "failed", "paused", "late"):
        assert f'<span class="badge s-{status}" data-field="status">{status}</span>' in page
    assert "CommandError: ledger locked" in page


def test_it_shows_totals_of_the_last_24_hours_and_a_duration_trend(staff_client, make_job):
    job = make_job("nightly")
    for seconds in (1, 2, 3):
        finished_run(job, seconds=seconds)
    finished_run(job, Status.FAILED, error="boom")
    old = finished_run(job)
    JobRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    data = staff_client.get("/dashboard/data.json").json()
    assert data["totals"] == {"runs": 4, "succeeded": 3, "failed": 1, "skipped": 0, "success_rate": 75.0}
    row = data["jobs"][0]
    assert row["recent_durations_seconds"] == [1.5, 1.0, 2.0, 3.0, 1.5]
    assert row["sparkline_svg"].startswith("<svg") and "<polyline" in row["sparkline_svg"]
    page = staff_client.get("/dashboard/").content.decode()
    assert '<svg class="spark"' in page and "75.0 %" in page
    assert "<script src" not in page and "<link" not in page  # no external assets


def test_it_runs_now_with_csrf_and_answers_at_once_with_the_new_run(make_job, superuser):
    job = make_job("nightly")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(superuser)
    browser.get("/dashboard/")
    token = browser.cookies["csrftoken"].value
    assert browser.post(f"/dashboard/jobs/{job.name}/run").status_code == 403
    response = browser.post(
        f"/dashboard/jobs/{job.name}/run", {"csrfmiddlewaretoken": token}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 202
    run = JobRun.objects.get()
    assert response.json() == {
        "ok": True,
        "message": f"nightly: run #{run.pk} queued",
        "run_id": run.pk,
        "status": "queued",
    }
    assert run.triggered_by == "manual" and run.triggered_by_user == superuser
    again = browser.post(
        f"/dashboard/jobs/{job.name}/run", {"csrfmiddlewaretoken": token}, HTTP_ACCEPT="application/json"
    )
    assert again.status_code == 409 and f"run #{run.pk} is queued" in again.json()["message"]
    rows = browser.get("/dashboard/data.json").json()["jobs"]
    assert rows[0]["status"] == "running" and rows[0]["active_run_id"] == run.pk


def test_it_runs_now_without_javascript_and_redirects_back_with_a_message(staff_client, make_job):
    make_job("nightly")
    response = staff_client.post("/dashboard/jobs/nightly/run", follow=True)
    assert response.redirect_chain[-1][0] == "/dashboard/"
    assert "nightly: run #" in response.content.decode()


def test_it_pages_a_jobs_history_newest_first_and_filters_by_status(staff_client, make_job):
    job = make_job("nightly")
    runs = [finished_run(job, Status.FAILED if i % 10 == 0 else Status.SUCCEEDED, error="x") for i in range(120)]
    page = staff_client.get("/dashboard/jobs/nightly/")
    shown = [r.pk for r in page.context["runs"]]
    assert shown == [r.pk for r in reversed(runs)][:50]
    second = staff_client.get(f"/dashboard/jobs/nightly/?before={page.context['next_before']}")
    assert [r.pk for r in second.context["runs"]] == [r.pk for r in reversed(runs)][50:100]
    failed = staff_client.get("/dashboard/jobs/nightly/?status=failed")
    assert [r.pk for r in failed.context["runs"]] == [r.pk for r in reversed(runs) if r.status == "failed"]
    assert failed.context["next_before"] is None
    assert staff_client.get("/dashboard/jobs/nightly/?status=bogus").status_code == 404
    assert staff_client.get("/dashboard/jobs/nope/").status_code == 404


def test_it_shows_a_runs_summary_error_and_output(staff_client, make_job):
    job = make_job("nightly")
    run = finished_run(job, Status.FAILED, error="ValueError: bad row 7", summary={"rows": 12}, output="line one\n")
    page = staff_client.get(f"/dashboard/runs/{run.pk}/").content.decode()
    assert (
        "ValueError: bad row 7" in page and "line one" in page and "&quot;rows&quot;: 12" in page
    )  # JSON, not a Python repr
    detail = staff_client.get(f"/dashboard/jobs/{job.name}/").content.decode()
    assert "ValueError: bad row 7" in detail


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_it_issues_a_fixed_number_of_queries_whatever_the_jobs_and_runs(staff_client, make_job):
    small = [make_job(f"job-{i}") for i in range(2)]
    for job in small:
        finished_run(job)
    counts = {url: _queries(staff_client, url) for url in ("/dashboard/", "/dashboard/data.json", "/api/jobs/status")}
    history = _queries(staff_client, "/dashboard/jobs/job-0/")
    for i in range(2, 25):
        job = make_job(f"job-{i}")
        JobRun.objects.bulk_create(
            JobRun(job=job, triggered_by="schedule", status="succeeded", duration=timedelta(seconds=i))
            for _ in range(30)
        )
    JobRun.objects.bulk_create(JobRun(job=small[0], triggered_by="manual", status="failed") for _ in range(200))
    for url, count in counts.items():
        assert _queries(staff_client, url) == count, url
    assert _queries(staff_client, "/dashboard/jobs/job-0/") == history
    # The dashboard's health panel adds a fixed 11: /health/'s checks (warned jobs and mail among them), the
    # queue, the queues' cards, the alert recipients. The job page adds its own: its blackout windows and
    # what it waits for (2), its versions (3: the newest number, one page, may restore).
    assert counts["/api/jobs/status"] <= 8 and history <= 14 and max(counts.values()) <= 25


def test_it_polls_its_data_without_a_full_reload(staff_client, make_job):
    make_job("nightly")
    page = staff_client.get("/dashboard/").content.decode()
    assert "Live.poll(dataUrl" in page and "location.reload" not in page
    assert json.loads(staff_client.get("/dashboard/data.json").content)["jobs"][0]["name"] == "nightly"
