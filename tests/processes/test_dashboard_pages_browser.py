"""The dashboard at 20,000 jobs in headless Chromium: one page of jobs with the counts, filters and
pages used from the keyboard, a refresh that keeps the page and filters, and a job created
elsewhere showing up on the open page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import Job
from tests.fleet import fleet_create
from tests.processes.conftest import BROWSER_PASSWORD, log_in, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_refresh")]
ROWS = "#jobs tbody tr[data-job]"


def shown(page) -> list[str]:
    return page.locator(ROWS).evaluate_all("rows => rows.map((row) => row.dataset.job)")


def refreshed(page) -> None:
    """Wait for the page's next refresh from data.json (and for what it drew)."""
    before = page.evaluate("document.body.dataset.refreshed || ''")
    wait_until(page, f"(document.body.dataset.refreshed || '') !== {before!r}", timeout=15)
    before = page.evaluate("document.body.dataset.refreshed")
    wait_until(page, f"document.body.dataset.refreshed !== {before!r}", timeout=15)


def test_it_pages_and_filters_20000_jobs_from_the_keyboard_and_keeps_the_view_on_refresh(page, live_server, staff):
    fleet_create(20_000, failed_every=10, late_every=1000)
    log_in(page, live_server, "ops", BROWSER_PASSWORD)
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    expect(page.locator('[data-count="failed"]')).to_have_text("1980")
    expect(page.locator('[data-count="late"]')).to_have_text("20")
    expect(page.locator("#page-caption")).to_contain_text("page 1 of 400")
    assert len(shown(page)) == 50 and shown(page)[0] == "bulk-00010"  # failing first

    # Filters from the keyboard: the status list by type-ahead, the text, Enter submits.
    page.locator('select[name="status"]').focus()
    page.keyboard.type("f")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "q"
    page.keyboard.type("number 12")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"status=failed&app=&q=number\+12$"))
    # 120, 1200-1290 and 12010-12990 (12000 is late): 110 failed jobs, 3 pages.
    expect(page.locator("#page-caption")).to_contain_text("110 jobs matching, page 1 of 3")

    # The next page by keyboard: Tab to the link, Enter.
    page.get_by_role("link", name="Next page").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"\?status=failed&q=number\+12&page=2$"))
    expect(page.locator("#page-caption")).to_contain_text("page 2 of 3")
    second = shown(page)
    assert len(second) == 50 and all(Job.objects.get(name=name).last_run_status == "failed" for name in second[:3])

    # Refreshes ask for this page: the rows stay those of page 2 of the filtered list.
    refreshed(page)
    assert shown(page) == second and page.url.endswith("?status=failed&q=number+12&page=2")


def test_it_shows_a_job_created_elsewhere_on_the_open_page(page, live_server, staff):
    fleet_create(20_000, failed_every=10)
    log_in(page, live_server, "ops", BROWSER_PASSWORD)
    expect(page.locator(ROWS)).to_have_count(50)
    assert "bulk-00000-new" not in shown(page)
    # Created by another process (a script, the admin): a failing job, so it comes first on page 1.
    now = timezone.now()
    Job.objects.bulk_create(
        [
            Job(
                name="bulk-00000-new",
                command="test_job",
                cron_expression="0 3 * * *",
                next_fire_at=now + timedelta(hours=3),
                late_at=now + timedelta(hours=4),
                last_run_at=now,
                last_run_status="failed",
            )
        ]
    )
    expect(page.locator(ROWS).first).to_have_attribute("data-job", "bulk-00000-new", timeout=20_000)
    assert len(shown(page)) == 50
    expect(page.locator('[data-count="failed"]')).to_have_text("2001")
    expect(page.get_by_role("button", name="Run bulk-00000-new now")).to_be_visible()
