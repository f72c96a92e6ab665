"""The operator's pages at fleet size: server time, response size and query count of each page at
``--jobs`` jobs (default 100,000) and as many runs as ``--runs-seconds`` of bulk SQL insert (up to
``--runs``), beside the same pages at the baseline fleet of 1,000 jobs and 100,000 runs.
Goal: every page under 1 s and 1 MB.

1. (Re)creates the database ``cronhouse_bench_pages``, migrates it.
2. Baseline: inserts 1,000 jobs and 100,000 runs with ``INSERT ... SELECT generate_series`` (every
   10th job failed, every 50th late, every 100th disabled, every 200th running), then times each
   page warm, ``--repeat`` times, through Django's test Client (a logged-in superuser; the API with
   the bootstrap key): median server time, response size, queries.
3. Empties the tables, inserts ``--jobs`` jobs and runs in batches of ``--batch`` until
   ``--runs`` or ``--runs-seconds`` (ANALYZE after), and times the same pages.
4. Prints both tables side by side and drops the database.

    .venv/bin/python bench/pages_at_scale.py [--jobs 100000] [--runs 10000000] [--runs-seconds 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 1.0
GOAL_BYTES = 1_000_000
API_KEY = "bench-pages-api-key-5e6f7a8b9c0d1e2f3a4b5c6d"

JOBS_SQL = """
INSERT INTO jobs_job (name, description, command, config, enabled,
    timeout_seconds, max_retries, retry_backoff_seconds, notify_on_failure, catch_up, catch_up_limit,
    escalate_after_failures, alert_state, next_fire_at, late_at, last_run_at, last_run_status,
    last_duration, consecutive_failures, last_run_warnings, seed_defaults, created_at, updated_at)
SELECT 'job-' || lpad(n::text, 6, '0'), 'bulk job ' || n, 'test_job', '{}', n %% 100 <> 0,
    3600, 0, 60, true, 'latest', 10, 3, 'ok',
    CASE WHEN n %% 100 = 0 THEN NULL WHEN n %% 50 = 0 THEN now() - interval '2 hours'
        ELSE now() + interval '3 hours' END,
    CASE WHEN n %% 100 = 0 THEN NULL WHEN n %% 50 = 0 THEN now() - interval '1 hour'
        ELSE now() + interval '4 hours' END,
    now() - interval '5 minutes', CASE WHEN n %% 10 = 0 THEN 'failed' ELSE 'succeeded' END,
    make_interval(secs => n %% 90), CASE WHEN n %% 10 = 0 THEN 1 ELSE 0 END, 0, '{}', now(), now()
FROM generate_series(1, %(jobs)s) AS n
"""

# Runs of job ((n - 1) % jobs) + 1 in id order, one every 15 minutes back in time per job.
RUNS_SQL = """
INSERT INTO jobs_jobrun (job_id, status, triggered_by, attempt, options, skip_reason, created_at,
    started_at, finished_at, duration, summary, error, output, worker_host, celery_task_id, slow, warnings)
SELECT first_id + (n - 1) %% %(jobs)s,
    CASE WHEN n %% 10 = 0 THEN 'failed' ELSE 'succeeded' END, 'schedule', 1, '{}', '',
    now() - make_interval(mins => 15 * (n / %(jobs)s)::int + 1),
    now() - make_interval(mins => 15 * (n / %(jobs)s)::int + 1),
    now() - make_interval(mins => 15 * (n / %(jobs)s)::int),
    make_interval(secs => n %% 60), '{}', CASE WHEN n %% 10 = 0 THEN 'boom: it broke' ELSE '' END, '', 'bench',
    '', false, '[]'
FROM generate_series(%(start)s, %(stop)s) AS n, (SELECT min(id) AS first_id FROM jobs_job) AS first
"""

# One active run per 200th job: "running" in the counts.
ACTIVE_SQL = """
INSERT INTO jobs_jobrun (job_id, status, triggered_by, attempt, options, skip_reason, created_at,
    started_at, summary, error, output, worker_host, celery_task_id, slow, warnings)
SELECT id, 'running', 'manual', 1, '{}', '', now(), now(), '{}', '', '', 'bench', '', false, '[]'
FROM jobs_job WHERE id % 200 = 0 AND enabled
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10_000_000)
    parser.add_argument("--runs-seconds", type=float, default=300.0, help="stop inserting runs after this long")
    parser.add_argument("--batch", type=int, default=500_000, help="runs per INSERT statement")
    parser.add_argument("--baseline-jobs", type=int, default=1_000)
    parser.add_argument("--baseline-runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="cronhouse_bench_pages")
    parser.add_argument("--keep", action="store_true", help="keep the database (to look at plans)")
    parser.add_argument(
        "--measure-only", action="store_true", help="time the pages of a database kept by --keep (migrated first)"
    )
    return parser.parse_args()


def setup_django(args) -> None:
    from bench.runner_overhead import recreate_database

    if not args.measure_only:
        recreate_database(args.pg, args.database)
    url = f"{args.pg}/{args.database}"
    env = {**os.environ, "DATABASE_URL": url, "CRONHOUSE_VAR_DIR": "/tmp/cronhouse-bench-pages"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, env=env, check=True)
    os.environ.update(DATABASE_URL=url, CRONHOUSE_VAR_DIR="/tmp/cronhouse-bench-pages", LOG_LEVEL="WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.JOBS_SECRET_KEY = API_KEY
    settings.JOBS_API_RATE_LIMIT = "1000000/m"
    settings.ALLOWED_HOSTS = ["*"]
    settings.DEBUG = False


# Job n's schedule (its PeriodicTask's crontab row), written as import_jobs writes a batch's.
CRONS = ("0 3 * * *", "*/5 * * * *", "15 7 * * 1", "0 */4 * * *")


def schedules_write(batch: int = 5000) -> None:
    from jobs.models import Job
    from jobs.scheduling.schedules import Schedule, jobs_schedules_create_many

    ids = list(Job.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), batch):
        jobs = list(Job.objects.filter(pk__in=ids[start : start + batch]).order_by("pk"))
        jobs_schedules_create_many(jobs, [Schedule(CRONS[job.pk % 4]) for job in jobs])


def fill(jobs: int, runs: int, seconds: float, batch: int) -> int:
    """Empty the job tables, insert ``jobs`` jobs and runs in batches until ``runs`` or ``seconds``;
    return how many runs went in."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE jobs_job, jobs_jobrun, django_celery_beat_periodictask RESTART IDENTITY CASCADE")
        cursor.execute(JOBS_SQL, {"jobs": jobs})
    schedules_write()
    with connection.cursor() as cursor:
        started, done = time.monotonic(), 0
        while done < runs and time.monotonic() - started < seconds:
            stop = min(done + batch, runs)
            cursor.execute(RUNS_SQL, {"jobs": jobs, "start": done + 1, "stop": stop})
            done = stop
            print(f"  {done:,} runs inserted ({time.monotonic() - started:.0f} s)", flush=True)
        cursor.execute(ACTIVE_SQL)
        cursor.execute("ANALYZE jobs_job")
        cursor.execute("ANALYZE jobs_jobrun")
    from django.core.cache import cache

    cache.clear()  # no totals of the previous fleet
    return done


def pages(jobs: int) -> list[tuple[str, str]]:
    """(label, what to fetch): a URL or ``cli``."""
    middle = f"job-{jobs // 2:06d}"
    return [
        ("/dashboard/", "/dashboard/"),
        ("/dashboard/ filtered", "/dashboard/?status=failed&q=job-0&sort=last_run&page=3"),
        ("/dashboard/ last page", "/dashboard/?page=999999"),
        ("data.json", "/dashboard/data.json"),
        ("data.json filtered", "/dashboard/data.json?status=failed&q=job-0&page=2"),
        ("a job's page", f"/dashboard/jobs/{middle}/"),
        ("failures", "/dashboard/failures/"),
        ("failures filtered", f"/dashboard/failures/?job={middle}&status=failed"),
        ("failures by app and day", "/dashboard/failures/?app=jobs&since=2000-01-01&housekeeping=1"),
        ("/api/jobs/status", "/api/jobs/status"),
        ("/api/jobs/status later page", "cursor"),
        ("admin jobs list", "/admin/jobs/job/"),
        ("admin jobs filtered", "/admin/jobs/job/?last_run_status__exact=failed&enabled__exact=1"),
        ("admin jobs search", f"/admin/jobs/job/?q={middle}"),
        ("admin job page", "admin-job"),
        ("admin runs list", "/admin/jobs/jobrun/"),
        ("admin runs filtered", "/admin/jobs/jobrun/?status__exact=failed&triggered_by__exact=schedule"),
        ("admin runs search", f"/admin/jobs/jobrun/?q={middle}"),
        ("/metrics", "/metrics"),
        ("/health/", "/health/"),
        ("manage.py jobs --limit 50", "cli"),
    ]


def measure(jobs: int, repeat: int) -> dict[str, tuple[float, int, int]]:
    """Median server time (s), response size (bytes) and queries of each page, warm."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True})
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    api = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
    cursor = client.get("/api/jobs/status", **api).json()["next_cursor"]
    for _ in range(5):  # a page some way in
        cursor = client.get(f"/api/jobs/status?cursor={cursor}", **api).json()["next_cursor"] or cursor

    from jobs.models import Job

    admin_job = f"/admin/jobs/job/{Job.objects.get(name=f'job-{jobs // 2:06d}').pk}/change/"

    def fetch(target: str) -> int:
        if target == "cli":
            out = StringIO()
            call_command("jobs", "--limit", "50", stdout=out)
            return len(out.getvalue().encode())
        url = {"cursor": f"/api/jobs/status?cursor={cursor}", "admin-job": admin_job}.get(target, target)
        response = client.get(url, **(api if url.startswith("/api/") or url == "/metrics" else {}))
        # /health/ answers 503 here: no beat or worker runs.
        assert response.status_code in (200, 503), (url, response.status_code)
        return len(response.content)

    results = {}
    for label, target in pages(jobs):
        started = time.perf_counter()
        fetch(target)  # warm (also fills the dashboard's 30-second totals cache)
        cold = time.perf_counter() - started
        times, size, queries = [], 0, 0
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                size = fetch(target)
                times.append(time.perf_counter() - started)
            queries = len(captured)
        results[label] = (statistics.median(times), size, queries, cold)
        print(f"  {label}: {results[label][0]:.3f} s (first {cold:.3f} s), {size:,} B, {queries} queries", flush=True)
    return results


def report(args, base: dict, base_runs: int, big: dict, big_runs: int) -> None:
    print(f"\nbaseline: {args.baseline_jobs:,} jobs, {base_runs:,} runs; fleet: {args.jobs:,} jobs, {big_runs:,} runs")
    print(f"medians of {args.repeat}, warm; goal < {GOAL_SECONDS:.0f} s and < {GOAL_BYTES / 1e6:.0f} MB per page\n")
    print(f"| page | baseline s | KB | queries | fleet s (first) | KB | queries | goal |\n|{'---|' * 8}")
    for label, (seconds, size, queries, cold) in big.items():
        b_seconds, b_size, b_queries, _ = base[label]
        met = "met" if seconds < GOAL_SECONDS and size < GOAL_BYTES else "missed"
        print(
            f"| {label} | {b_seconds:.3f} | {b_size / 1000:.0f} | {b_queries} "
            f"| {seconds:.3f} ({cold:.3f}) | {size / 1000:.0f} | {queries} | {met} |"
        )


def main() -> None:
    args = parse_args()
    sys.path.insert(0, str(BASE_DIR))
    setup_django(args)
    import logging

    logging.disable(logging.WARNING)
    if args.measure_only:
        from jobs.models import Job

        measure(Job.objects.count(), args.repeat)
        return
    print(f"baseline: {args.baseline_jobs:,} jobs, {args.baseline_runs:,} runs", flush=True)
    base_runs = fill(args.baseline_jobs, args.baseline_runs, float("inf"), args.batch)
    base = measure(args.baseline_jobs, args.repeat)
    print(f"fleet: {args.jobs:,} jobs, up to {args.runs:,} runs or {args.runs_seconds:.0f} s of inserts", flush=True)
    big_runs = fill(args.jobs, args.runs, args.runs_seconds, args.batch)
    big = measure(args.jobs, args.repeat)
    report(args, base, base_runs, big, big_runs)
    if not args.keep:
        from django.db import connections

        from bench.runner_overhead import drop_database

        connections.close_all()
        drop_database(args.pg, args.database)


if __name__ == "__main__":
    main()
