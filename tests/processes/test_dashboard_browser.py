"""The dashboard in headless Chromium: a staff user logs in, clicks "Run now" and sees the run
succeed on a real worker; a non-staff user lands on the login page; the page stays put
while it refreshes, works from the keyboard and fits a phone. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from jobs.models import JobRun
from tests.processes.conftest import BROWSER_PASSWORD, log_in, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_refresh")]
PASSWORD = BROWSER_PASSWORD
NEVER = "0 0 1 1 *"  # no slot comes round during a test


@pytest.mark.processes
def test_it_runs_a_job_from_the_dashboard_and_shows_it_succeed(page, live_server, staff, make_job, worker, artifacts):
    make_job("nightly-report", cron_expression=NEVER)
    make_job("other-job", cron_expression=NEVER)
    log_in(page, live_server, "ops", PASSWORD)
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    row = page.locator('tr[data-job="nightly-report"]')
    expect(row.locator('[data-field="status"]')).to_have_text("idle")

    row.get_by_role("button", name="Run nightly-report now").click()
    expect(page.locator("#live")).to_contain_text("nightly-report: run #")
    # The page polls data.json and updates the row in place: queued/running, then the result.
    expect(row.locator('[data-field="last_run"]')).to_contain_text("succeeded", timeout=60_000)
    expect(row.locator('[data-field="status"]')).to_have_text("idle")
    run = JobRun.objects.get(job__name="nightly-report")
    assert run.status == JobRun.Status.SUCCEEDED and run.triggered_by_user == staff
    # One run: one dot on the sparkline, no line.
    assert row.locator("svg.spark circle").count() == 1 and row.locator("svg.spark polyline").count() == 0
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)


def test_it_sends_a_non_staff_user_to_the_login_page(page, live_server, django_user_model):
    django_user_model.objects.create_user("tenant", "t@example.com", PASSWORD)
    page.goto(f"{live_server.url}/dashboard/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/dashboard/"))
    log_in(page, live_server, "tenant", PASSWORD)
    # The staff login refuses the account: still the login page, with the reason.
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    expect(page.locator(".errornote")).to_contain_text("staff account")
    page.goto(f"{live_server.url}/dashboard/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/dashboard/"))


def test_it_keeps_the_scroll_position_and_is_keyboard_and_phone_friendly(page, live_server, staff, make_job, artifacts):
    for i in range(40):
        make_job(f"job-{i:02d}", cron_expression=NEVER)
    log_in(page, live_server, "ops", PASSWORD)
    page.evaluate("window.scrollTo(0, 900)")
    before = page.evaluate("document.body.dataset.refreshed || ''")
    wait_until(page, f"(document.body.dataset.refreshed || '') !== {before!r}", timeout=10)
    assert page.evaluate("window.scrollY") == 900

    # Keyboard: the first Tab reaches the skip link, and Enter on a focused Run-now button runs it.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    button = page.get_by_role("button", name="Run job-00 now")
    button.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#live")).to_contain_text("job-00: run #")
    assert JobRun.objects.filter(job__name="job-00").count() == 1

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/dashboard/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(artifacts / "dashboard-phone.png"))


def test_it_offers_run_now_only_where_the_user_may_run(page, live_server, django_user_model, make_job):
    """A read-only user sees no "Run now"; a Billing operator sees it on billing jobs only."""
    from django.contrib.auth.models import Group, Permission

    from jobs.models import JobOperatorGroup

    billing_group, notify_group = Group.objects.create(name="Billing"), Group.objects.create(name="Notify")
    JobOperatorGroup.objects.create(job=make_job("generate-payouts", cron_expression=NEVER), group=billing_group)
    JobOperatorGroup.objects.create(job=make_job("process-notifications", cron_expression=NEVER), group=notify_group)
    view, run = (Permission.objects.get(codename=c) for c in ("view_jobrun", "run_job"))
    reader = django_user_model.objects.create_user("reader", password=PASSWORD, is_staff=True)
    reader.user_permissions.add(view)
    reader.groups.add(billing_group, notify_group)
    operator = django_user_model.objects.create_user("billing", password=PASSWORD, is_staff=True)
    operator.user_permissions.add(view, run)
    operator.groups.add(billing_group)

    log_in(page, live_server, "reader", PASSWORD)
    expect(page.locator('tr[data-job="process-notifications"]')).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Run .* now"))).to_have_count(0)

    page.context.clear_cookies()
    log_in(page, live_server, "billing", PASSWORD)
    expect(page.locator('tr[data-job="generate-payouts"]')).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Run .* now"))).to_have_count(1)
    expect(page.get_by_role("button", name="Run generate-payouts now")).to_be_visible()
    expect(page.locator('tr[data-job="process-notifications"]')).to_have_count(0)


@pytest.mark.processes
def test_it_follows_a_run_now_to_its_end_next_to_the_button_keeping_focus(page, live_server, staff, make_job, worker):
    make_job("test-job", command="test_job", cron_expression=NEVER)
    log_in(page, live_server, "ops", PASSWORD)
    row = page.locator('tr[data-job="test-job"]')
    updated = page.locator("#updated").text_content()
    assert re.fullmatch(r"Updated \d\d:\d\d:\d\d UTC", updated)
    page.evaluate("window.__loaded = true")  # gone if the page reloads

    button = row.get_by_role("button", name="Run test-job now")
    button.focus()
    page.keyboard.press("Enter")
    follow = row.locator('[data-field="run_now"]')
    expect(follow).to_contain_text("run #")
    expect(follow.locator("[data-status]")).to_have_text("succeeded", timeout=60_000)
    run = JobRun.objects.get(job__name="test-job")
    assert run.status == JobRun.Status.SUCCEEDED
    expect(follow.get_by_role("link", name=f"run #{run.pk}")).to_be_visible()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Run test-job now"
    assert page.evaluate("window.__loaded") is True
    expect(page.locator("#updated")).not_to_have_text(updated)
