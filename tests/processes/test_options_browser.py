"""Run with options and pause in headless Chromium, from the job's page: a dry run as of a date with
a command option, refused options shown on the form; a pause until a time showing who, why and until
when; a pause then a resume."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import Job, JobRun
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


def test_it_runs_a_job_with_options_from_its_page(browser_page, live_server, staff, make_job):
    page = browser_page
    make_job("march-report", command="test_job", cron_expression=NEVER)
    log_in(page, live_server, "ops", BROWSER_PASSWORD, next_url="/dashboard/jobs/march-report/")
    page.get_by_role("link", name="Run with options…").click()

    page.get_by_label("The command's own options (JSON)").fill('{"shell": "rm -rf /"}')
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#run-options-errors")).to_contain_text("Unknown option 'shell' for test_job")
    assert not JobRun.objects.exists()

    page.get_by_label("As of").fill("2026-03-01")
    page.get_by_label("Dry run: report what it would do, write nothing").check()
    page.get_by_label("The command's own options (JSON)").fill('{"report": "march"}')
    page.get_by_role("button", name="Run").click()
    run = JobRun.objects.get()
    expect(page).to_have_url(re.compile(rf"/dashboard/runs/{run.pk}/$"))
    expect(page.locator("h1")).to_contain_text("dry run")
    expect(page.locator(".kv")).to_contain_text("2026-03-01 00:00:00 UTC")
    expect(page.locator("#run-options")).to_have_text("--report=march")

    page.get_by_role("link", name="← march-report").click()
    expect(page.locator(f'#runs tr[data-run="{run.pk}"] [data-field="options"]')).to_have_text(
        "as of 2026-03-01 00:00:00 UTC · dry run · --report=march"
    )


def test_it_pauses_until_a_time_from_the_job_page_and_shows_who_why_and_until(
    browser_page, live_server, staff, make_job
):
    page = browser_page
    make_job("nightly-export", command="test_job", cron_expression="0 3 * * *")
    until = (timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    log_in(page, live_server, "ops", BROWSER_PASSWORD, next_url="/dashboard/jobs/nightly-export/")
    page.locator("#pause summary").click()
    page.get_by_label("Reason").fill("warehouse migration")
    page.get_by_label("Until (UTC, optional)").fill(until.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Pause", exact=True).click()

    expect(page.locator(".messages")).to_contain_text("nightly-export paused.")
    expect(page.locator("#job-status")).to_have_text("paused")
    state = page.locator("#pause-state")
    expect(state.locator('[data-field="paused_by"]')).to_have_text("ops")
    expect(state.locator('[data-field="paused_reason"]')).to_have_text("warehouse migration")
    expect(state.locator('[data-field="paused_until"]')).to_contain_text(until.strftime("%Y-%m-%d %H:%M:00 UTC"))
    job = Job.objects.get(name="nightly-export")
    assert not job.enabled and job.paused_until == until and job.paused_by == staff


def test_it_pauses_from_the_job_page_then_resumes(browser_page, live_server, staff, make_job):
    page = browser_page
    make_job("hourly-sync", command="test_job", cron_expression="0 * * * *")
    log_in(page, live_server, "ops", BROWSER_PASSWORD, next_url="/dashboard/jobs/hourly-sync/")
    page.locator("#pause summary").click()
    page.get_by_label("Reason").fill("vendor outage")
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.locator("#pause-heading")).to_have_text("Paused")
    expect(page.locator("#next-runs")).to_have_text("-")

    page.get_by_role("button", name="Resume").click()
    expect(page.locator(".messages")).to_contain_text("hourly-sync resumed.")
    expect(page.locator("#pause-heading")).to_have_text("Not paused")
    expect(page.locator("#job-status")).not_to_have_text("paused")
    expect(page.locator("#next-runs li")).to_have_count(5)
    job = Job.objects.get(name="hourly-sync")
    assert job.enabled and job.paused_reason == "" and job.next_fire_at is not None
