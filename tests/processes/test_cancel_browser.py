"""Cancel from the run's page in headless Chromium: a run running on a real worker is asked to stop
with a reason, and the page follows it to its end, cancelled, saying who and why."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from jobs.models import JobRun
from jobs.running.runner import run_trigger
from tests.process_group import wait_for, wait_for_log
from tests.processes.conftest import BROWSER_PASSWORD, log_in

from .helpers import fresh

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_refresh")]


def test_it_cancels_a_running_run_from_its_page(
    page, live_server, staff, seeded_fixtures, processes, broker_emptied, artifacts
):
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    processes.worker("worker", JOBS_HEARTBEAT_SECONDS="0.5", JOBS_CANCEL_GRACE_SECONDS="5")
    wait_for_log(processes, "worker", " ready.", timeout=90)
    job = seeded_fixtures("test-sleep-job", config={"seconds": 120}, max_retries=0)
    run = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL).run
    wait_for(lambda: fresh(run).status == "running", timeout=90, message="the run to start")

    log_in(page, live_server, "ops", BROWSER_PASSWORD, next_url=f"/dashboard/runs/{run.pk}/")
    expect(page.locator("#run-status")).to_have_text("running")
    page.fill("#cancel-form input[name=reason]", "started by mistake")
    page.get_by_role("button", name="Cancel run").click()

    expect(page.locator("#cancel-info")).to_contain_text("by ops: started by mistake")
    # The page refreshes itself until the run has ended.
    expect(page.locator("#run-status")).to_have_text("cancelled", timeout=30_000)
    page.screenshot(path=str(artifacts / "run-cancelled.png"), full_page=True)
    run = fresh(run)
    assert (run.status, run.cancelled_by, run.cancel_reason) == ("cancelled", "ops", "started by mistake")
    assert not errors, errors
