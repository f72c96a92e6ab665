"""The dashboard's choice to count the housekeeping jobs' runs travels with its links: the failures
card leads to a page of the same failures, and paging, sorting, filtering and the status links keep
the choice (and the toggle keeps the filters)."""

from __future__ import annotations

import re
from html import unescape

import pytest

from jobs.models import JobRun

pytestmark = pytest.mark.django_db


def failed_run(job) -> JobRun:
    return JobRun.objects.create(job=job, triggered_by=JobRun.Trigger.SCHEDULE, status="failed", error="boom")


def links(page: str) -> list[str]:
    return [unescape(href) for href in re.findall(r'href="([^"]*)"', page)]


def failures_shown(client, url: str) -> set[int]:
    page = client.get(url).content.decode()
    return {int(pk) for pk in re.findall(r'data-run="(\d+)"', page)}


def test_it_leads_from_the_failures_count_to_the_same_failures_with_or_without_housekeeping(staff_client, make_job):
    drain = make_job("process-notifications", command="process_notifications", housekeeping=True)
    work = make_job("generate-charges", command="generate_charges")
    drained, charged = failed_run(drain), failed_run(work)

    for query, expected in (("", {charged.pk}), ("?housekeeping=1", {charged.pk, drained.pk})):
        page = staff_client.get(f"/dashboard/{query}").content.decode()
        failures_link = re.search(r'<a href="([^"]*)"[^>]*>Failures</a><b data-total="failed">(\d+)</b>', page)
        assert int(failures_link.group(2)) == len(expected)
        assert failures_shown(staff_client, unescape(failures_link.group(1))) == expected


def test_it_keeps_the_housekeeping_choice_on_every_link_of_the_job_list(staff_client, make_job):
    for n in range(55):  # two pages
        make_job(f"job-{n:02d}")

    page = staff_client.get("/dashboard/?housekeeping=1&q=job").content.decode()

    toggle = unescape(re.search(r'<a href="([^"]*)">Leave them out</a>', page).group(1))
    assert toggle == "?q=job"
    kept = [href for href in links(page) if href.startswith("?") and href != toggle]
    assert kept and all("housekeeping=1" in href for href in kept)
    assert any("page=2" in href for href in kept) and any("sort=name" in href for href in kept)
    assert '<input type="hidden" name="housekeeping" value="1">' in page
    included = staff_client.get("/dashboard/?q=job").content.decode()
    assert unescape(re.search(r'<a href="([^"]*)">Include them</a>', included).group(1)) == "?q=job&housekeeping=1"
