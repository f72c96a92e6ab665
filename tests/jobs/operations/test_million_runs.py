"""With 1,000,000 runs in the table, the jobs page and a job's history page issue the same
fixed number of queries as with none, and each renders in well under a second."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import JobRun

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
RUNS = 1_000_000
JOBS = 20

# Columns this fixture sets itself; any other NOT NULL column gets its model default.
GENERATED = {
    "job_id": "(%(job_ids)s)[1 + g %% {jobs}]",
    "status": "CASE WHEN g %% 50 = 0 THEN 'failed' ELSE 'succeeded' END",
    "triggered_by": "'schedule'",
    "attempt": "1",
    "created_at": "now() - g * interval '1 second'",
    "started_at": "now() - g * interval '1 second'",
    "finished_at": "now() - g * interval '1 second' + (g %% 7) * interval '1 second'",
    "duration": "(g %% 7) * interval '1 second'",
    "error": "CASE WHEN g %% 50 = 0 THEN 'CommandError: synthetic failure' ELSE '' END",
}


def bulk_insert_runs(job_ids: list[int]) -> None:
    """One INSERT ... SELECT generate_series: a million rows in a few seconds."""
    columns, values, params = [], [], {"job_ids": job_ids}
    for field in JobRun._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.column in GENERATED:
            columns.append(field.column)
            values.append(GENERATED[field.column].format(jobs=len(job_ids)))
        elif not field.null:
            columns.append(field.column)
            values.append(f"%({field.column})s")
            params[field.column] = field.get_db_prep_save(field.get_default(), connection)
    sql = (
        f"INSERT INTO {JobRun._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM generate_series(1, {RUNS}) AS g"
    )
    sql = sql.replace("(%(job_ids)s)", "(%(job_ids)s::bigint[])")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.execute(f"ANALYZE {JobRun._meta.db_table}")


def measure(client, url: str) -> tuple[int, float]:
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200, url
    return len(captured), elapsed


def test_it_serves_the_dashboard_with_a_million_runs_in_fixed_queries(staff_client, make_job):
    jobs = [make_job(f"job-{i:02d}", cron_expression="*/5 * * * *") for i in range(JOBS)]
    urls = ["/dashboard/", "/dashboard/data.json", "/dashboard/jobs/job-03/", "/dashboard/jobs/job-03/?status=failed"]
    empty = {url: measure(staff_client, url)[0] for url in urls}

    bulk_insert_runs([job.pk for job in jobs])
    assert JobRun.objects.count() == RUNS

    for url in urls:
        queries, elapsed = measure(staff_client, url)
        assert queries == empty[url], url
        # Not a speed goal (bench/ has those): a page that scanned the million rows would take
        # many seconds, so a generous bound still tells an index scan from a full one.
        assert elapsed < 3.0, f"{url} took {elapsed:.2f}s"
    data = staff_client.get("/dashboard/data.json").json()
    assert len(data["jobs"]) == JOBS and all(len(row["recent_durations_seconds"]) == 20 for row in data["jobs"])
