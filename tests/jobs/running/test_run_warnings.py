"""A run that succeeded without doing (all) its work: succeeded with warnings, on every surface."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from jobs.models import JobRun
from jobs.running.runner import run_execute, run_trigger
from tests.jobs.conftest import API_KEY

pytestmark = pytest.mark.django_db
Status = JobRun.Status
WARNING = "no upstream configured; nothing was imported"


def run_once(job, **options) -> JobRun:
    return run_execute(run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False, **options).run.pk)


@pytest.fixture
def warned(make_job):
    job = make_job("importer", config={"warn": [WARNING]})
    return job, run_once(job)


def test_it_records_the_warnings_on_a_succeeded_run_redacted(make_job):
    job = make_job("leaky", config={"warn": ["login failed: password=hunter2-secret", "second"]})
    run = run_once(job)
    assert run.status == Status.SUCCEEDED
    assert run.warnings == ["login failed: password=[redacted]", "second"]
    stored = JobRun.objects.get(pk=run.pk)
    assert "hunter2" not in str(stored.warnings) + str(stored.summary) + stored.output
    job.refresh_from_db()
    assert job.last_run_status == Status.SUCCEEDED and job.last_run_warnings == 2


def test_it_shows_succeeded_with_warnings_on_the_dashboard_and_the_run_pages(staff_client, warned):
    job, run = warned
    dashboard = staff_client.get("/dashboard/").content.decode()
    row = re.search(r'<tr data-job="importer">.*?</tr>', dashboard, re.S).group(0)
    assert "succeeded with warnings" in row and WARNING in row

    history = staff_client.get(f"/dashboard/jobs/{job.name}/").content.decode()
    assert "with warnings" in history and f"warning: {WARNING}" in history

    page = staff_client.get(f"/dashboard/runs/{run.pk}/").content.decode()
    assert "Succeeded with warnings" in page and WARNING in page

    refreshed = staff_client.get("/dashboard/data.json").json()
    [shown] = [row for row in refreshed["jobs"] if row["name"] == "importer"]
    assert shown["last_run"]["status_text"] == "succeeded with warnings"
    assert shown["last_run"]["warnings"] == [WARNING]


def test_it_shows_succeeded_with_warnings_in_the_admin(staff_client, warned):
    _, run = warned
    listing = staff_client.get("/admin/jobs/jobrun/").content.decode()
    assert "succeeded with warnings" in listing and f"warning: {WARNING}" in listing
    page = staff_client.get(f"/admin/jobs/jobrun/{run.pk}/change/").content.decode()
    assert WARNING in page
    jobs = staff_client.get("/admin/jobs/job/").content.decode()
    assert "succeeded with warnings" in jobs


def test_it_answers_the_warnings_in_the_status_and_run_api(api, warned):
    _, run = warned
    status = api.get("/api/jobs/status", token=API_KEY).json()
    [job] = [row for row in status["jobs"] if row["name"] == "importer"]
    assert job["last_run"]["status"] == "succeeded"
    assert job["last_run"]["status_text"] == "succeeded with warnings"
    assert job["last_run"]["warnings"] == [WARNING]
    detail = api.get(f"/api/runs/{run.pk}", token=API_KEY).json()
    assert (detail["status"], detail["status_text"], detail["warnings"]) == (
        "succeeded",
        "succeeded with warnings",
        [WARNING],
    )


def test_it_lists_the_warnings_in_manage_py_jobs(warned, make_job):
    make_job("quiet")
    out = io.StringIO()
    call_command("jobs", stdout=out)
    text = out.getvalue()
    assert re.search(r"^importer .*succeeded with warnings", text, re.M)
    assert f"importer: {WARNING}" in text
    assert not re.search(r"^quiet .*with warnings", text, re.M)


def test_it_reports_warned_jobs_as_degraded_on_health_until_a_clean_run(client, warned):
    job, _ = warned
    body = client.get("/health/").json()
    assert "warnings" in body["degraded"]
    assert body["checks"]["warnings"] == {"ok": True, "degraded": True, "count": 1, "jobs": ["importer"]}

    job.config = {}
    job.save()
    run_once(job)
    body = client.get("/health/").json()
    assert "warnings" not in body["degraded"] and body["checks"]["warnings"]["count"] == 0


def test_it_reads_warned_jobs_for_health_in_queries_that_do_not_grow_with_the_fleet(
    make_job, django_assert_max_num_queries
):
    from jobs.models import Job
    from jobs.operations.health import WARNED_JOBS_SHOWN, check_warnings

    for index in range(WARNED_JOBS_SHOWN + 3):
        make_job(f"warned-{index:02d}")
    Job.objects.update(last_run_warnings=1)
    with django_assert_max_num_queries(2):
        result = check_warnings(None)
    assert result["count"] == WARNED_JOBS_SHOWN + 3
    assert result["jobs"] == [f"warned-{index:02d}" for index in range(WARNED_JOBS_SHOWN)]


def test_it_keeps_a_plain_success_without_warnings(make_job):
    run = run_once(make_job("plain"))
    assert run.status == Status.SUCCEEDED and run.warnings == [] and run.status_text == "succeeded"
