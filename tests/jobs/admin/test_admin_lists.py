"""The admin's job and run lists: the columns that matter sort when their header is clicked, and
times name their zone. (How the lists fit a 1366 px screen: tests/processes/test_admin_lists_browser.py.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from jobs.models import Job, JobRun

pytestmark = pytest.mark.django_db
AT = datetime(2026, 12, 2, 14, 3, 22, tzinfo=UTC)


def header_link(page: str, column: str) -> str:
    """The href of a column header's sort link, as a click on the header follows it."""
    match = re.search(rf'<th[^>]*class="[^"]*column-{column}[^"]*".*?<a href="([^"]+)"', page, re.S)
    assert match, f"column {column} cannot be sorted"
    return match.group(1).replace("&amp;", "&")


def row_texts(page: str, column: str) -> list[str]:
    cells = re.findall(rf'<t[dh] class="field-{column}[^"]*">(.*?)</t[dh]>', page, re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]


@pytest.fixture
def three_jobs(make_job):
    for name, ran, seconds, result in [
        ("alpha", AT, 300, "succeeded"),
        ("bravo", AT - timedelta(hours=2), 5, "failed"),
        ("charlie", AT - timedelta(hours=1), 60, "abandoned"),
    ]:
        job = make_job(name)
        Job.objects.filter(pk=job.pk).update(
            last_run_at=ran, last_duration=timedelta(seconds=seconds), last_run_status=result
        )


@pytest.mark.parametrize(
    "column, expected",
    [
        ("last_run", ["bravo", "charlie", "alpha"]),
        ("duration", ["bravo", "charlie", "alpha"]),
        ("result", ["charlie", "bravo", "alpha"]),
    ],
)
def test_it_sorts_jobs_by_a_click_on_last_run_duration_and_result(staff_client, three_jobs, column, expected):
    url = "/admin/jobs/job/"
    page = staff_client.get(url).content.decode()
    sorted_page = staff_client.get(url + header_link(page, column)).content.decode()
    assert row_texts(sorted_page, "name") == expected


def test_it_sorts_runs_by_a_click_on_started_and_duration(staff_client, make_job):
    job = make_job("nightly")
    for started, seconds in [(AT, 9), (AT - timedelta(minutes=5), 1), (AT - timedelta(minutes=9), 4)]:
        JobRun.objects.create(
            job=job,
            status="succeeded",
            triggered_by="schedule",
            started_at=started,
            duration=timedelta(seconds=seconds),
        )
    url = "/admin/jobs/jobrun/"
    page = staff_client.get(url).content.decode()
    by_duration = staff_client.get(url + header_link(page, "duration_column")).content.decode()
    assert row_texts(by_duration, "duration_column") == ["1.0 s", "4.0 s", "9.0 s"]
    by_start = staff_client.get(url + header_link(page, "started")).content.decode()
    assert row_texts(by_start, "started") == [
        "2026-12-02 13:54:22 UTC",
        "2026-12-02 13:58:22 UTC",
        "2026-12-02 14:03:22 UTC",
    ]
