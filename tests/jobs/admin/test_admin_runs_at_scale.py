"""The admin's run list on a large table: a fixed number of queries however many runs there are,
never an unbounded COUNT(*) of jobs_jobrun, a search and filters that go through indexes, and
every moment and duration in the one format of every page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.admin_paging import COUNT_LIMIT
from jobs.models import JobRun

pytestmark = pytest.mark.django_db
AT = datetime(2026, 12, 6, 17, 5, 3, tzinfo=UTC)
URL = "/admin/jobs/jobrun/"


def add_runs(job, count: int, **fields) -> list[JobRun]:
    fields = {"status": "succeeded", "triggered_by": "schedule", **fields}
    return JobRun.objects.bulk_create(
        JobRun(job=job, created_at=AT - timedelta(minutes=i), started_at=AT - timedelta(minutes=i), **fields)
        for i in range(count)
    )


def run_ids(page: str) -> list[int]:
    return [int(cell) for cell in re.findall(r'<th class="field-id"><a [^>]*>(\d+)</a>', page)]


def unbounded_run_counts(queries: list[dict]) -> list[str]:
    """COUNT(*) statements over jobs_jobrun that neither filter nor stop after a bound."""
    return [
        q["sql"]
        for q in queries
        if "COUNT(*)" in q["sql"].upper()
        and "jobs_jobrun" in q["sql"]
        and not re.search(r"\b(WHERE|LIMIT)\b", q["sql"])
    ]


def get(client, url: str):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode(), captured.captured_queries


@pytest.mark.parametrize("query", ["", "?status__exact=failed", "?q=night", "?triggered_by__exact=schedule&p=2"])
def test_it_lists_runs_in_the_same_queries_for_30_and_300_runs(staff_client, make_job, query):
    job = make_job("nightly")
    add_runs(job, 30, status="failed")
    few = len(get(staff_client, URL + query)[1])
    add_runs(job, 270, status="failed")
    page, queries = get(staff_client, URL + query)
    assert len(queries) == few
    assert unbounded_run_counts(queries) == []


def test_it_never_counts_every_run(staff_client, make_job):
    add_runs(make_job("nightly"), COUNT_LIMIT + 5)
    page, queries = get(staff_client, URL)
    assert unbounded_run_counts(queries) == []
    # SQLite has no table estimate: the list says how many it counted up to.
    if connection.vendor == "sqlite":
        assert f"more than {COUNT_LIMIT:,} job runs" in page
    assert len(run_ids(page)) == 100


@pytest.mark.postgres
def test_it_shows_the_table_estimate_on_postgresql(staff_client, make_job):
    add_runs(make_job("nightly"), COUNT_LIMIT + 5)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE jobs_jobrun")
    page, _ = get(staff_client, URL)
    assert f"about {COUNT_LIMIT + 5:,} job runs" in page
    filtered, _ = get(staff_client, URL + "?status__exact=succeeded")
    assert f"more than {COUNT_LIMIT:,} job runs" in filtered


def test_it_counts_a_short_list_exactly_and_newest_first(staff_client, make_job):
    runs = add_runs(make_job("nightly"), 3)
    page, _ = get(staff_client, URL)
    assert "3 job runs" in page
    assert run_ids(page) == [run.pk for run in runs]


def test_it_finds_runs_by_job_name_prefix_run_id_and_task_id(staff_client, make_job):
    nightly = add_runs(make_job("nightly-report"), 2)
    other = add_runs(make_job("hourly-sync"), 2)
    assert run_ids(get(staff_client, URL + "?q=nightly")[0]) == [run.pk for run in nightly]
    # A prefix, not a substring: "report" is inside a name but starts none.
    assert run_ids(get(staff_client, URL + "?q=report")[0]) == []
    assert run_ids(get(staff_client, URL + f"?q={other[1].pk}")[0]) == [other[1].pk]
    task_id = JobRun.objects.get(pk=other[0].pk).celery_task_id or "0b1c2d3e-0000-4000-8000-00000000abcd"
    JobRun.objects.filter(pk=other[0].pk).update(celery_task_id=task_id)
    assert run_ids(get(staff_client, URL + f"?q={task_id}")[0]) == [other[0].pk]


def test_it_filters_by_status_trigger_and_job(staff_client, make_job):
    nightly, hourly = make_job("nightly"), make_job("hourly")
    failed = add_runs(nightly, 2, status="failed")
    manual = add_runs(hourly, 1, triggered_by="manual")
    add_runs(hourly, 3)
    assert run_ids(get(staff_client, URL + "?status__exact=failed")[0]) == [run.pk for run in failed]
    assert run_ids(get(staff_client, URL + "?triggered_by__exact=manual")[0]) == [manual[0].pk]
    assert len(run_ids(get(staff_client, URL + f"?job__id__exact={nightly.pk}")[0])) == 2


def test_it_shows_moments_and_durations_in_the_one_format(staff_client, make_job):
    run = JobRun.objects.create(
        job=make_job("nightly"),
        status="succeeded",
        triggered_by="schedule",
        created_at=AT,
        started_at=AT,
        finished_at=AT + timedelta(milliseconds=22),
        duration=timedelta(milliseconds=22),
    )
    listing, _ = get(staff_client, URL)
    assert "2026-12-06 17:05:03 UTC" in listing and "22 ms" in listing
    detail, _ = get(staff_client, f"{URL}{run.pk}/change/")
    assert "2026-12-06 17:05:03 UTC" in detail and "22 ms" in detail
    assert "Dec. 6, 2026" not in detail and "0:00:00.022" not in detail
