"""The job list at any size: the dashboard's counts and page of jobs, its refresh, the paginated
status API and ``manage.py jobs``, each filtered on the server and bounded in size and queries."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import JobOperatorGroup, JobRun
from tests.fleet import fleet_create

pytestmark = pytest.mark.django_db


def shown_jobs(response) -> list[str]:
    return re.findall(r'<tr data-job="([^"]+)"', response.content.decode())


def _queries(get, url) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        response = get(url)
    assert response.status_code == 200, url
    return len(captured), len(response.content)


def test_it_issues_the_same_queries_for_30_and_300_jobs(staff_client, api):
    urls = {
        "/dashboard/": staff_client.get,
        "/dashboard/?status=failed&q=bulk": staff_client.get,
        "/dashboard/data.json?page=2": staff_client.get,
        "/api/jobs/status": api.get,
        "/api/jobs/status?limit=20&status=failed": api.get,
    }
    fleet_create(30, failed_every=3, late_every=7)
    small = {url: _queries(get, url) for url, get in urls.items()}
    fleet_create(270, prefix="more", failed_every=3, late_every=7)
    JobRun.objects.bulk_create(
        JobRun(job_id=run.job_id, triggered_by="manual", status="succeeded") for run in JobRun.objects.all()[:100]
    )
    large = {url: _queries(get, url) for url, get in urls.items()}
    assert {url: queries for url, (queries, _) in large.items()} == {url: q for url, (q, _) in small.items()}
    # A page holds at most 50 jobs (the API 100): 300 jobs draw no bigger page than 50 do.
    assert all(size < 150_000 for _, size in large.values())
    assert len(shown_jobs(staff_client.get("/dashboard/"))) == 50


def test_it_pages_the_dashboard_failing_and_late_jobs_first_with_counts(staff_client):
    fleet_create(120, failed_every=10, late_every=25)
    first = staff_client.get("/dashboard/")
    page = first.content.decode()
    names = shown_jobs(first)
    # 10 failed (every 10th but 50 and 100, which are late), then the 4 late ones, then the rest by name.
    late = ["bulk-00025", "bulk-00050", "bulk-00075", "bulk-00100"]
    failed = [f"bulk-{n:05d}" for n in range(10, 121, 10) if n not in (50, 100)]
    assert names[:14] == failed + late[:4] and names[14] == "bulk-00001"
    assert 'data-count="failed">10<' in page and 'data-count="late">4<' in page and 'data-count="idle">106<' in page
    assert "120 jobs" in page and "page 1 of 3" in page and 'href="?page=2" rel="next"' in page
    third = staff_client.get("/dashboard/?page=3")
    assert len(shown_jobs(third)) == 20 and 'rel="prev"' in third.content.decode()


def test_it_filters_the_dashboard_by_status_app_group_and_text_from_the_address(staff_client):
    jobs = fleet_create(60, failed_every=4)
    ops = Group.objects.create(name="ops")
    JobOperatorGroup.objects.create(job=jobs[2], group=ops)
    assert len(shown_jobs(staff_client.get("/dashboard/?status=failed"))) == 15
    assert shown_jobs(staff_client.get("/dashboard/?status=failed&q=number+8")) == ["bulk-00008"]
    assert shown_jobs(staff_client.get("/dashboard/?group=ops")) == ["bulk-00003"]
    assert shown_jobs(staff_client.get("/dashboard/?app=webhooks")) == []
    by_name = staff_client.get("/dashboard/?sort=name&order=descending&page=2")
    assert shown_jobs(by_name)[0] == "bulk-00010"
    # The page links keep the filters and the sort.
    assert 'href="?sort=name&amp;order=descending&amp;page=1" rel="first"' in by_name.content.decode()


def test_it_refreshes_only_the_page_the_address_names(staff_client, make_job):
    fleet_create(70, failed_every=5)
    data = staff_client.get("/dashboard/data.json?status=failed&q=bulk-0000").json()
    assert [job["name"] for job in data["jobs"]] == ["bulk-00005"]
    assert data["counts"] == {"failed": 14, "late": 0, "running": 0, "idle": 56, "paused": 0}
    assert data["page"] == {"number": 1, "pages": 1, "jobs": 1}
    second = staff_client.get("/dashboard/data.json?sort=name&page=2").json()
    assert [job["name"] for job in second["jobs"]][:2] == ["bulk-00051", "bulk-00052"]
    # A job created elsewhere that falls on the shown page is in the next refresh, drawn as a row.
    make_job("bulk-00050a")
    again = staff_client.get("/dashboard/data.json?sort=name&page=2&rows=html").json()
    assert again["jobs"][0]["name"] == "bulk-00050a" and 'data-job="bulk-00050a"' in again["rows_html"]


def test_it_pages_the_status_api_by_cursor_with_the_totals(api):
    fleet_create(7, failed_every=2)
    names, cursor, pages = [], "", 0
    while True:
        body = api.get(f"/api/jobs/status?limit=3&cursor={cursor}").json()
        # "disabled": the status API's word for paused, kept for its callers.
        assert body["totals"] == {"failed": 3, "late": 0, "running": 0, "idle": 4, "paused": 0, "disabled": 0}
        names += [job["name"] for job in body["jobs"]]
        pages += 1
        if not (cursor := body["next_cursor"]):
            break
    assert pages == 3 and names == [f"bulk-{n:05d}" for n in range(1, 8)]
    failed = api.get("/api/jobs/status?status=failed&q=bulk").json()
    assert [job["name"] for job in failed["jobs"]] == ["bulk-00002", "bulk-00004", "bulk-00006"]
    assert failed["next_cursor"] is None
    assert api.get("/api/jobs/status?limit=501").status_code == 400
    assert api.get("/api/jobs/status?cursor=not-ours").status_code == 400
    assert api.get("/api/jobs/status?status=sleeping").status_code == 400


def test_it_lists_jobs_on_the_command_line_filtered_and_limited():
    fleet_create(80, failed_every=8)
    out = StringIO()
    call_command("jobs", stdout=out)
    lines = out.getvalue().splitlines()
    assert sum(line.startswith("bulk-") for line in lines) == 50 and lines[1].startswith("bulk-00008 ")
    assert "50 of 80 jobs shown; --limit 0 lists them all." in out.getvalue()
    out = StringIO()
    call_command("jobs", "--status", "failed", "--search", "number 1", "--limit", "0", stdout=out)
    assert [line.split()[0] for line in out.getvalue().splitlines()[1:]] == ["bulk-00016"]
    out = StringIO()
    call_command("jobs", "--limit", "0", stdout=out)
    assert sum(line.startswith("bulk-") for line in out.getvalue().splitlines()) == 80
