"""An operator's day in headless Chromium: the failures reached from the dashboard's card, a filter
and a sorted column, a failed run retried from its page and followed to its end on a real worker,
three months of charges backfilled, a 2,000-item job's progress bar moving on its job page, and
every page fitting a 375 px phone. Screenshots go to test-artifacts/; a script error on any page
fails the test."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import LedgerEntry
from jobs.models import Job, JobRun
from jobs.running.runner import run_execute, run_trigger
from tests.jobs.billing_jobs import build, charges_job_create  # noqa: F401  (build: a fixture)
from tests.processes.conftest import BROWSER_PASSWORD, log_in, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_refresh")]
PASSWORD = BROWSER_PASSWORD
NEVER = "0 0 1 1 *"  # no slot comes round during a test
PHONE = {"width": 375, "height": 812}


@pytest.fixture
def browser_page(page):
    """The page, failing the test on any script error it raised."""
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    assert not errors, errors


def ran(job) -> JobRun:
    return run_execute(run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run.pk)


def refreshed(page) -> None:
    """Wait for the page's next refresh from its JSON."""
    before = page.evaluate("document.body.dataset.refreshed || ''")
    wait_until(page, f"(document.body.dataset.refreshed || '') !== {before!r}", timeout=10)


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_it_opens_the_failures_from_the_card_and_narrows_the_table_with_a_filter(
    browser_page, live_server, staff, make_job
):
    page = browser_page
    ran(make_job("a-fine-job", command="test_job", cron_expression=NEVER))
    failed = ran(make_job("z-broken-job", command="test_fail_job", cron_expression=NEVER))
    log_in(page, live_server, "ops", PASSWORD)

    page.locator("#totals").get_by_role("link", name="Failures").click()
    expect(page).to_have_url(re.compile(r"/dashboard/failures/$"))
    rows = page.locator("#failures tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-run", str(failed.pk))
    expect(rows.first).to_contain_text("z-broken-job")

    page.go_back()
    page.locator("select[name=status]").select_option("idle")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"status=idle"))
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(page.locator('tr[data-job="a-fine-job"]')).to_be_visible()
    expect(page.locator("#jobs caption")).to_contain_text("1 job matching")


def test_it_sorts_the_jobs_by_a_column_from_the_keyboard_through_refreshes(browser_page, live_server, staff, make_job):
    page = browser_page
    # Half an hour away whatever the time: never tied with the next minute.
    make_job("b-hourly", cron_expression=f"{(timezone.now().minute + 30) % 60} * * * *")
    make_job("a-yearly", cron_expression=NEVER)
    make_job("c-minutely", cron_expression="* * * * *")
    log_in(page, live_server, "ops", PASSWORD)
    names = page.locator("#jobs tbody tr")
    next_run = page.locator("#jobs th").get_by_role("link", name="Next run")
    header = page.locator("#jobs th", has=page.get_by_role("link", name="Next run"))
    expect(page.locator("#jobs th", has=page.get_by_role("link", name="Status", exact=True))).to_have_attribute(
        "aria-sort", "ascending"
    )

    next_run.focus()
    page.keyboard.press("Enter")
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert [row.get_attribute("data-job") for row in names.all()] == ["c-minutely", "b-hourly", "a-yearly"]
    next_run.focus()
    page.keyboard.press("Enter")
    expect(header).to_have_attribute("aria-sort", "descending")
    assert [row.get_attribute("data-job") for row in names.all()] == ["a-yearly", "b-hourly", "c-minutely"]
    expect(page).to_have_url(re.compile(r"sort=next_run"))
    expect(page).to_have_url(re.compile(r"order=descending"))

    refreshed(page)
    refreshed(page)
    assert [row.get_attribute("data-job") for row in names.all()] == ["a-yearly", "b-hourly", "c-minutely"]
    page.locator("#jobs th").get_by_role("link", name="Job", exact=True).click()
    expect(page.locator("#page-caption")).to_contain_text("sorted by name, ascending")
    assert [row.get_attribute("data-job") for row in names.all()] == ["a-yearly", "b-hourly", "c-minutely"]


@pytest.mark.processes
def test_it_retries_a_failed_run_from_its_page_and_follows_the_retry_to_its_end(
    browser_page, live_server, staff, make_job, worker, artifacts
):
    page = browser_page
    job = make_job("nightly-report", command="test_job", cron_expression=NEVER)
    now = timezone.now()
    failed = JobRun.objects.create(
        job=job, triggered_by="schedule", status="failed", error="RuntimeError: ledger locked", started_at=now
    )
    log_in(page, live_server, "ops", PASSWORD, next_url=f"/dashboard/runs/{failed.pk}/")
    expect(page.locator("#run-status")).to_have_text("failed")

    page.get_by_role("button", name="Retry with the same options").click()
    retry = JobRun.objects.exclude(pk=failed.pk).get()
    expect(page).to_have_url(re.compile(rf"/dashboard/runs/{retry.pk}/$"))
    page.evaluate("window.__loaded = true")  # gone if the page reloads
    updated = page.locator("#updated").text_content()

    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=60_000)
    assert page.evaluate("window.__loaded") is True
    expect(page.locator("#updated")).not_to_have_text(updated)
    expect(page.locator('[data-field="duration"]')).to_have_text(re.compile(r"^\d+ ms$|^\d+\.\d s$"))
    expect(page.locator('[data-field="finished_at"]')).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))
    expect(page.locator("#summary pre")).to_contain_text('"ok": true')
    retry.refresh_from_db()
    assert retry.status == JobRun.Status.SUCCEEDED and retry.triggered_by_user == staff
    page.screenshot(path=str(artifacts / "operator-run.png"), full_page=True)


@pytest.mark.processes
def test_it_backfills_three_months_of_charges_from_the_job_page(
    browser_page,
    live_server,
    staff,
    worker,
    build,  # noqa: F811
):
    page = browser_page
    lease = build.lease(rent="1200.00", due_day=5, start="2024-06-01", end="2040-05-31")
    charges_job_create()
    log_in(page, live_server, "ops", PASSWORD, next_url="/dashboard/jobs/generate-charges/")

    page.get_by_role("link", name="Backfill a date range").click()
    page.get_by_label("From").fill("2025-01-01")
    page.get_by_label("To").fill("2025-03-31")
    page.get_by_role("button", name="List the slots").click()
    expect(page.locator("#backfill-slots li")).to_have_text(
        ["2025-01-01 06:00:00 UTC", "2025-02-01 06:00:00 UTC", "2025-03-01 06:00:00 UTC"]
    )
    page.get_by_role("button", name="Run these 3 slots").click()

    expect(page.locator("#backfill-progress")).to_have_text("3 of 3 slots done", timeout=90_000)
    expect(page.locator("#backfill-slots .badge")).to_have_text(["succeeded"] * 3)
    due = sorted(LedgerEntry.objects.filter(lease=lease, kind="charge").values_list("due_date", flat=True))
    assert due == [date(2025, 1, 5), date(2025, 2, 5), date(2025, 3, 5)]


@pytest.mark.processes
def test_it_moves_a_progress_bar_on_the_job_page_while_2000_items_are_worked_through(
    browser_page, live_server, staff, make_job, worker, artifacts
):
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 600})
    job = make_job("progress-job", command="test_progress_job", config={"delay": 0.003}, cron_expression=NEVER)
    earlier = timezone.now() - timedelta(days=1)
    JobRun.objects.bulk_create(
        JobRun(
            job=job,
            triggered_by="schedule",
            status="succeeded",
            started_at=earlier + timedelta(minutes=i),
            duration=timedelta(seconds=8 + i % 3),
        )
        for i in range(30)
    )
    log_in(page, live_server, "ops", PASSWORD, next_url="/dashboard/jobs/progress-job/")

    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#latest")).to_be_visible()
    page.evaluate("window.__loaded = true")  # gone if the page reloads
    bar = page.locator("#latest progress")
    # Read at the foot of the page, with focus on the run's link: the page grows above as the run
    # goes on, and what is read must not move.
    first_link = page.locator("#runs tbody a").first
    first_link.focus()
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    actions = page.get_by_role("heading", name="Actions on this job")
    top = actions.evaluate("node => node.getBoundingClientRect().top")
    assert page.evaluate("window.scrollY") > 0

    wait_until(page, "() => { const v = document.querySelector('#latest progress').value; return v > 0 && v < 2000; }")
    first = bar.evaluate("node => node.value")
    wait_until(page, f"() => document.querySelector('#latest progress').value > {first}")
    second = bar.evaluate("node => node.value")
    expect(page.locator('#latest [data-field="progress_text"]')).to_contain_text(" of 2,000 (")
    page.screenshot(path=str(artifacts / "operator-job-running.png"), full_page=True)

    expect(page.locator('#runs tbody tr [data-field="status"]').first).to_have_text("succeeded", timeout=60_000)
    expect(page.locator("#latest progress")).to_be_hidden()
    assert 0 < first < second < 2000
    assert page.evaluate("window.__loaded") is True
    assert page.evaluate("document.activeElement.textContent") == first_link.text_content()
    assert abs(actions.evaluate("node => node.getBoundingClientRect().top") - top) < 2
    run = JobRun.objects.filter(job=job).latest("created_at")
    assert (run.status, run.progress_done, run.summary["done"]) == ("succeeded", 2000, 2000)
    expect(page.locator("#chart svg circle")).to_have_count(31)


def test_it_fits_a_375_px_phone_and_keeps_screenshots(browser_page, live_server, staff, make_job, artifacts):
    page = browser_page
    job = make_job("generate-statements-for-every-owner", command="test_job", cron_expression="0 8 1 * *")
    Job.objects.filter(pk=job.pk).update(expected_duration_seconds=1, description="Owner statement PDFs " * 8)
    for _ in range(3):
        ran(job)
    broken = ran(make_job("a-very-long-failing-job-name-that-keeps-going", command="test_fail_job"))
    log_in(page, live_server, "ops", PASSWORD)
    page.screenshot(path=str(artifacts / "operator-dashboard.png"), full_page=True)
    page.goto(f"{live_server.url}/dashboard/jobs/{job.name}/")
    expect(page.locator("#chart svg.chart")).to_be_visible()
    page.screenshot(path=str(artifacts / "operator-job.png"), full_page=True)

    page.set_viewport_size(PHONE)
    for url in ("/dashboard/", f"/dashboard/jobs/{job.name}/", f"/dashboard/runs/{broken.pk}/", "/dashboard/failures/"):
        page.goto(f"{live_server.url}{url}")
        assert fits(page), url
    page.goto(f"{live_server.url}/dashboard/jobs/{job.name}/")
    chart = page.locator("#chart svg.chart").bounding_box()
    assert chart["width"] <= 375 and chart["height"] > 100
    page.screenshot(path=str(artifacts / "operator-job-phone.png"), full_page=True)
    page.goto(f"{live_server.url}/dashboard/")
    page.locator("#jobs th").get_by_role(
        "link", name="Job", exact=True
    ).click()  # the sort links stay within reach on a phone
    expect(page.locator("#jobs tbody tr").first).to_have_attribute("data-job", re.compile("^a-very-long"))
    page.screenshot(path=str(artifacts / "operator-dashboard-phone.png"), full_page=True)
