"""Run retention at scale (PostgreSQL): purge-logs deleting ``--runs`` old runs while a worker
records runs beside it. Reports deleted runs per second and the writer's worst wait.

Data: ``--jobs`` jobs, ``--runs`` runs older than the 90-day retention (one INSERT ... SELECT
generate_series) and 30 recent runs per job, then ANALYZE. The writer is a real process (this
file with ``--writer``): it records a run through ``jobs.running.runner.run_trigger``, marks it running,
then succeeded, in a loop, and logs how long each of those statements took.

Ours: ``jobs.operations.logs.logs_purge`` (batches of JOBS_PURGE_BATCH_SIZE ids, each its own transaction,
keeping each job's 20 newest runs). Baseline, on the same data rebuilt: what an operator would
otherwise run, one ``DELETE FROM jobs_jobrun WHERE created_at < cutoff`` (it keeps nothing per job).

The database (``--database``) is recreated and dropped at the end; the writer is stopped by PID.

    .venv/bin/python bench/retention_at_scale.py [--runs 2000000] [--jobs 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
RECENT_PER_JOB = 30
RETENTION_DAYS = 90
GOAL_WORST_WAIT = 1.0

# Columns of the generated runs; any other NOT NULL column gets its model default.
GENERATED = {
    "job_id": "(%(job_ids)s::bigint[])[1 + g %% {jobs}]",
    "status": "CASE WHEN g %% 50 = 0 THEN 'failed' ELSE 'succeeded' END",
    "triggered_by": "'schedule'",
    "attempt": "1",
    "created_at": "now() - interval '{days} days' - g * interval '{step} seconds'",
    "started_at": "now() - interval '{days} days' - g * interval '{step} seconds'",
    "finished_at": "now() - interval '{days} days' - g * interval '{step} seconds' + interval '2 seconds'",
    "duration": "interval '2 seconds'",
    "celery_task_id": "md5(g::text)",
    "output": "repeat('output line ', 20)",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2_000_000)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="cronhouse_bench_retention")
    parser.add_argument("--writer", metavar="LOG", help=argparse.SUPPRESS)
    return parser.parse_args()


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("CELERY_BROKER_URL", "")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def recreate_database(args: argparse.Namespace) -> str:
    import psycopg

    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}"')
        conn.execute(f'CREATE DATABASE "{args.database}"')
    url = f"{args.pg}/{args.database}"
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=BASE_DIR, env=env, check=True)
    return url


def drop_database(args: argparse.Namespace) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


def make_jobs(count: int) -> list[int]:
    from jobs.models import Job

    for i in range(count):
        Job(name=f"bench-{i:04d}", command="test_job", cron_expression="*/5 * * * *").save()
    return list(Job.objects.order_by("pk").values_list("pk", flat=True))


def load_runs(job_ids: list[int], runs: int) -> None:
    """``runs`` old runs (before the cutoff) and RECENT_PER_JOB recent runs per job."""
    from django.db import connection

    from jobs.models import JobRun

    JobRun.objects.all().delete()
    # The old runs are spread over a year before the cutoff.
    batches = [(runs, RETENTION_DAYS + 1, max(1, 365 * 86400 // runs)), (RECENT_PER_JOB * len(job_ids), 0, 60)]
    for count, days, step in batches:
        columns, values, params = [], [], {"job_ids": job_ids}
        for field in JobRun._meta.concrete_fields:
            if field.primary_key:
                continue
            if field.column in GENERATED:
                columns.append(field.column)
                values.append(GENERATED[field.column].format(jobs=len(job_ids), days=days, step=step))
            elif not field.null:
                columns.append(field.column)
                values.append(f"%({field.column})s")
                params[field.column] = field.get_db_prep_save(field.get_default(), connection)
        sql = (
            f"INSERT INTO {JobRun._meta.db_table} ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} FROM generate_series(1, {count}) AS g"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {JobRun._meta.db_table}")


def writer(log_path: str) -> None:
    """Record runs as a worker does, forever, logging [when, seconds] of each statement."""
    from django.utils import timezone

    from jobs.models import Job, JobRun
    from jobs.running.runner import run_trigger

    job_ids = list(Job.objects.values_list("pk", flat=True))
    with open(log_path, "a", buffering=1) as log:
        i = 0
        while True:
            job = Job(pk=job_ids[i % len(job_ids)])
            i += 1
            started = time.perf_counter()
            result = run_trigger(job=job, triggered_by=JobRun.Trigger.API, dispatch=False)
            run = result.run if result.queued else None
            steps = [time.perf_counter()]
            if run is not None:
                JobRun.objects.filter(pk=run.pk).update(status="running", started_at=timezone.now())
                steps.append(time.perf_counter())
                JobRun.objects.filter(pk=run.pk).update(
                    status="succeeded", finished_at=timezone.now(), duration=timedelta(milliseconds=5)
                )
                steps.append(time.perf_counter())
            previous = started
            for step in steps:
                log.write(json.dumps([time.time(), step - previous]) + "\n")
                previous = step
            time.sleep(0.01)


def with_writer(url: str, action) -> tuple[float, float, int]:
    """Run ``action`` while a writer process records runs: (seconds, writer's worst wait, writes)."""
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as handle:
        log_path = handle.name
    env = {**os.environ, "DATABASE_URL": url}
    process = subprocess.Popen([sys.executable, __file__, "--writer", log_path], cwd=BASE_DIR, env=env)
    try:
        time.sleep(3)  # the writer is up and writing
        began = time.time()
        action()
        ended = time.time()
        time.sleep(1)
    finally:
        process.terminate()
        process.wait(timeout=10)
    waits = []
    with open(log_path) as log:
        for line in log:
            at, seconds = json.loads(line)
            if began <= at <= ended + 1:
                waits.append(seconds)
    os.unlink(log_path)
    return ended - began, max(waits, default=float("nan")), len(waits)


def main() -> None:
    args = parse_args()
    if args.writer:
        django_setup(os.environ["DATABASE_URL"])
        writer(args.writer)
        return
    url = recreate_database(args)
    django_setup(url)
    from django.db import connection
    from django.utils import timezone

    from jobs.models import JobRun
    from jobs.operations.logs import logs_purge

    results = {}
    try:
        job_ids = make_jobs(args.jobs)
        for name in ("ours", "baseline"):
            started = time.perf_counter()
            load_runs(job_ids, args.runs)
            print(
                f"{name}: loaded {JobRun.objects.count():,} runs in {time.perf_counter() - started:.0f} s", flush=True
            )
            now = timezone.now()
            cutoff = now - timedelta(days=RETENTION_DAYS)
            before = JobRun.objects.count()
            if name == "ours":
                seconds, worst, writes = with_writer(
                    url, lambda now=now: logs_purge(now=now, days=RETENTION_DAYS, keep=20)
                )
            else:

                def delete_all(cutoff=cutoff) -> None:
                    with connection.cursor() as cursor:
                        cursor.execute("DELETE FROM jobs_jobrun WHERE created_at < %s", [cutoff])

                seconds, worst, writes = with_writer(url, delete_all)
            deleted = before - JobRun.objects.filter(created_at__lte=now).count()
            results[name] = {
                "deleted": deleted,
                "seconds": round(seconds, 1),
                "deleted_per_second": round(deleted / seconds),
                "writer_worst_wait_seconds": round(worst, 3),
                "writer_statements": writes,
            }
            print(f"{name}: {json.dumps(results[name])}", flush=True)
    finally:
        drop_database(args)
    ours = results["ours"]
    verdict = "meets" if ours["writer_worst_wait_seconds"] < GOAL_WORST_WAIT else "misses"
    print(f"goal: writer's worst wait < {GOAL_WORST_WAIT} s during the purge: {verdict}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
