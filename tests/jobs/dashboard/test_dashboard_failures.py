"""Failures first: a failures page reached from the dashboard's card, failing jobs on top, filters
by status, app and text, and errors cut to one line that links to the run."""

from __future__ import annotations

import pytest

from jobs.models import JobRun
from jobs.running.runner import run_execute, run_trigger

pytestmark = pytest.mark.django_db
Trigger = JobRun.Trigger


def ran(job) -> JobRun:
    return run_execute(run_trigger(job=job, triggered_by=Trigger.MANUAL, dispatch=False).run.pk)


@pytest.fixture
def mixed(make_job):
    ok = make_job("a-fine-job", command="test_job")
    broken = make_job("z-broken-job", command="test_fail_job", description="breaks on purpose")
    charges = make_job("generate-charges", command="generate_charges")
    ran(ok)
    failed = ran(broken)
    return ok, broken, charges, failed


def test_it_links_the_failures_card_to_a_page_of_failed_runs_only(staff_client, mixed):
    ok, broken, charges, failed = mixed
    page = staff_client.get("/dashboard/").content.decode()
    assert 'href="/dashboard/failures/"' in page
    failures = staff_client.get("/dashboard/failures/").content.decode()
    assert f'data-run="{failed.pk}"' in failures and "z-broken-job" in failures
    assert "a-fine-job" not in failures
    first_line = failed.error.strip().splitlines()[0]
    assert first_line in failures and f'href="/dashboard/runs/{failed.pk}/"' in failures


def test_it_lists_a_retry_waiting_to_run_as_retrying_in_place_of_its_failure(staff_client, make_job):
    job = make_job("flaky", command="test_fail_job", max_retries=1, retry_backoff_seconds=600)
    failed = ran(job)
    retry = JobRun.objects.get(retry_of=failed)
    page = staff_client.get("/dashboard/failures/").content.decode()
    assert f'data-run="{retry.pk}"' in page and "retrying" in page and f'data-run="{failed.pk}"' not in page
    assert f'retry of <a href="/dashboard/runs/{failed.pk}/"' in page


def test_it_puts_failing_jobs_first(staff_client, mixed):
    page = staff_client.get("/dashboard/").content.decode()
    assert page.index('data-job="z-broken-job"') < page.index('data-job="a-fine-job"')


def test_it_narrows_the_table_by_status_app_and_text(staff_client, mixed):
    def shown(query: str) -> set[str]:
        page = staff_client.get(f"/dashboard/?{query}").content.decode()
        return {name for name in ("a-fine-job", "z-broken-job", "generate-charges") if f'data-job="{name}"' in page}

    assert shown("") == {"a-fine-job", "z-broken-job", "generate-charges"}
    assert shown("status=failed") == {"z-broken-job"}
    assert shown("app=billing") == {"generate-charges"}
    assert shown("q=on+purpose") == {"z-broken-job"}
    assert shown("status=idle&app=jobs") == {"a-fine-job"}


def test_it_links_the_last_error_to_its_run(staff_client, mixed):
    failed = mixed[3]
    page = staff_client.get("/dashboard/").content.decode()
    assert f'href="/dashboard/runs/{failed.pk}/"' in page
    data = staff_client.get("/dashboard/data.json").json()
    row = next(job for job in data["jobs"] if job["name"] == "z-broken-job")
    assert row["last_error_run_id"] == failed.pk


def test_it_shows_a_monthly_jobs_own_latest_runs_among_noisy_every_minute_jobs(staff_client, make_job):
    monthly = make_job("generate-charges-monthly", command="test_job", cron_expression="0 6 1 * *")
    own = ran(monthly)
    for index in range(3):
        noisy = make_job(f"noisy-{index}", command="test_job")
        for _ in range(5):
            ran(noisy)
    page = staff_client.get(f"/admin/jobs/job/{monthly.pk}/change/").content.decode()
    assert f"/admin/jobs/jobrun/{own.pk}/change/" in page


def test_it_shows_the_error_in_the_admins_runs_list_found_by_job_name(staff_client, mixed):
    # The search goes through indexes (run id, task id, job name prefix), not the error's text.
    failed = mixed[3]
    page = staff_client.get("/admin/jobs/jobrun/?q=z-broken").content.decode()
    assert "test-fail-job failed on purpose" in page and f"/admin/jobs/jobrun/{failed.pk}/change/" in page
