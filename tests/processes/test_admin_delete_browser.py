"""Deleting a job that has runs, in headless Chromium: the admin's delete page says why the job is
kept, links its runs, and pauses it instead from the keyboard."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from jobs.models import Job, JobRun
from tests.processes.conftest import BROWSER_PASSWORD, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_offers_to_pause_a_job_with_runs_instead_of_deleting_it(page, live_server, staff, make_job):
    job = make_job("nightly-statements")
    JobRun.objects.create(job=job, status="failed", triggered_by="schedule", error="boom")
    log_in(page, live_server, "ops", BROWSER_PASSWORD, next_url=f"/admin/jobs/job/{job.pk}/delete/")

    expect(page.locator("#content")).to_contain_text("A job's runs are its audit trail")
    expect(page.get_by_role("link", name="its runs")).to_have_attribute(
        "href", re.compile(rf"job__id__exact={job.pk}&housekeeping=1$")
    )
    page.get_by_role("button", name="Pause instead").focus()
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/admin/jobs/job/$"))
    expect(page.locator(".messagelist")).to_be_visible()
    job.refresh_from_db()
    assert not job.enabled and Job.objects.filter(pk=job.pk).exists()
