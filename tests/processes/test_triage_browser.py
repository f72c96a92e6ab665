"""Triage in headless Chromium: a failure retried from the failures page on a real worker, the retry
and its failure linked both ways and the failure gone from the list; a new failure appearing on the
open page while a ticked box stays ticked; a selection acknowledged with a note; three failures
retried at once, the unticked one left in the list."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from jobs.models import JobRun
from tests.processes.conftest import BROWSER_PASSWORD, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_refresh")]
NEVER = "0 0 1 1 *"  # no slot comes round during a test


@pytest.fixture
def browser_page(page):
    """The page, failing the test on any script error it raised."""
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    assert not errors, errors


def failure(job, error: str = "RuntimeError: ledger locked") -> JobRun:
    return JobRun.objects.create(job=job, triggered_by="schedule", status="failed", error=error)


@pytest.mark.processes
def test_it_retries_a_failure_from_the_failures_page_and_links_both_runs(
    browser_page, live_server, staff, make_job, worker
):
    page = browser_page
    failed = failure(make_job("nightly-report", command="test_job", cron_expression=NEVER))
    log_in(page, live_server, "ops", BROWSER_PASSWORD, next_url="/dashboard/failures/")
    row = page.locator(f'#failures tr[data-run="{failed.pk}"]')
    expect(row).to_contain_text("ledger locked")

    row.get_by_role("checkbox", name=f"Select run #{failed.pk}").check()
    page.get_by_role("button", name="Retry selected").click()
    retry = JobRun.objects.get(retry_of=failed)
    expect(page.locator(".messages")).to_contain_text(f"#{failed.pk}: nightly-report: run #{retry.pk} queued")
    expect(page.locator(f'#failures tr[data-run="{failed.pk}"]')).to_have_count(0)

    page.goto(f"{live_server.url}/dashboard/runs/{retry.pk}/")
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=60_000)
    page.locator('[data-lineage="retry-of"]').click()
    expect(page).to_have_url(re.compile(rf"/dashboard/runs/{failed.pk}/$"))
    expect(page.locator('[data-lineage="retried-as"]')).to_have_text(f"#{retry.pk}")
    expect(page.get_by_role("button", name="Retry with the same options")).to_have_count(0)


def test_it_shows_a_new_failure_on_the_open_page_and_acknowledges_a_selection(
    browser_page, live_server, staff, make_job
):
    page = browser_page
    job = make_job("flaky-export", command="test_fail_job", cron_expression=NEVER)
    first = failure(job, "first failure")
    log_in(page, live_server, "ops", BROWSER_PASSWORD, next_url="/dashboard/failures/?job=flaky-export")
    page.get_by_role("checkbox", name=f"Select run #{first.pk}").check()

    second = failure(job, "second failure")
    failure(make_job("another-job", command="test_fail_job", cron_expression=NEVER))  # filtered out
    expect(page.locator(f'#failures tr[data-run="{second.pk}"]')).to_be_visible()
    expect(page.locator("#failures tbody tr")).to_have_count(2)
    expect(page.get_by_role("checkbox", name=f"Select run #{first.pk}")).to_be_checked()

    page.get_by_role("checkbox", name=f"Select run #{second.pk}").check()
    page.get_by_label("Note").fill("the export target was down for maintenance")
    page.get_by_role("button", name="Acknowledge selected").click()
    expect(page).to_have_url(re.compile(r"\?job=flaky-export$"))
    expect(page.locator("#failures tbody")).to_contain_text("No failures to look at")
    assert JobRun.objects.filter(acknowledged_by=staff).count() == 2


@pytest.mark.usefixtures("broker_emptied")
def test_it_retries_three_failures_at_once_and_keeps_the_one_left_unticked(browser_page, live_server, staff, make_job):
    page = browser_page
    picked = [
        failure(make_job(name, command="test_job", cron_expression=NEVER), f"{name} broke")
        for name in ("ledger-export", "mail-digest", "owner-statements")
    ]
    left = failure(make_job("member-sync", command="test_job", cron_expression=NEVER), "left for later")
    log_in(page, live_server, "ops", BROWSER_PASSWORD, next_url="/dashboard/failures/")
    expect(page.locator("#failures tbody tr")).to_have_count(4)

    for run in picked:
        page.get_by_role("checkbox", name=f"Select run #{run.pk}").check()
    page.get_by_role("button", name="Retry selected").click()
    expect(page.locator("#failures tbody tr")).to_have_count(1)
    expect(page.locator(f'#failures tr[data-run="{left.pk}"]')).to_contain_text("left for later")

    messages = page.locator(".messages")
    for run in picked:
        retry = JobRun.objects.get(retry_of=run)
        assert (retry.job_id, retry.triggered_by, retry.status) == (run.job_id, "manual", "queued")
        expect(messages).to_contain_text(f"#{run.pk}: {run.job.name}: run #{retry.pk} queued")
    assert not JobRun.objects.filter(retry_of=left).exists()
