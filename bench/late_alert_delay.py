"""Late detection delay, end to end: from a slot's grace expiry to its late alert being queued,
through a real beat. Goal: under 60 s for every job.

Each of ``--jobs`` every-minute jobs gets its own grace (spread evenly over one minute, so the
expiry instants fall at every phase of the beat's check cycle) and no PeriodicTask, so its first
slot is never fired: the job goes late once, and its late e-mail is queued by the leading beat's
lateness check. Delay = the e-mail's ``created_at`` - (missed slot + grace).

Figure and baseline run at the same time, each with its own beat and its own database:

* figure: the shipped setting, ``JOBS_LATENESS_CHECK_SECONDS=20`` (beat's housekeeping);
* baseline: a check once a minute -- what relying on the every-minute process-jobs run gives,
  and what a per-minute external pinger (Healthchecks.io-style) can do at best.

The benchmark owns two databases (``cronhouse_bench_late_a`` / ``_b``, dropped and recreated)
and stops the beats it starts by PID, pass or fail.

    .venv/bin/python bench/late_alert_delay.py [--jobs 60]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.runner_overhead import drop_database, recreate_database  # noqa: E402
from bench.scheduler_lag import percentile  # noqa: E402

GOAL_SECONDS = 60.0
FIGURE_CHECK_SECONDS = 20.0
BASELINE_CHECK_SECONDS = 60.0
FIRST_GRACE_SECONDS = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="cronhouse_bench_late")
    return parser.parse_args()


def create_database(pg: str, name: str, var_dir: str) -> str:
    recreate_database(pg, name)
    url = f"{pg}/{name}"
    env = {**os.environ, "DATABASE_URL": url, "CRONHOUSE_VAR_DIR": var_dir}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, env=env, check=True)
    return url


def seed_jobs(url: str, count: int) -> None:
    """Jobs without schedule rows (bulk_create writes none): beat never fires them."""
    graces = [FIRST_GRACE_SECONDS + round(60 * i / count) for i in range(count)]
    script = (
        "from jobs.models import Job\n"
        f"Job.objects.bulk_create([Job(name=f'late-{{i:03d}}', command='test_job', cron_expression='* * * * *',"
        f" grace_seconds=g) for i, g in enumerate({graces!r})])\n"
    )
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=BASE_DIR, env=env, check=True)


def start_beat(url: str, check_seconds: float, folder: str, name: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CRONHOUSE_VAR_DIR": os.path.join(folder, name),
        "JOBS_LATENESS_CHECK_SECONDS": str(check_seconds),
        "JOBS_ALERT_RECIPIENTS": "ops@example.com",
        "DEBUG": "false",
    }
    env.pop("CELERY_BROKER_URL", None)  # beat sends nothing here; the embedded broker will do
    argv = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING"]
    argv += ["--schedule", os.path.join(folder, f"{name}-schedule"), "--pidfile", ""]
    log = open(os.path.join(folder, f"{name}.log"), "w")
    return subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def delays(url: str) -> tuple[list[float], int]:
    """Seconds from each job's grace expiry to its late e-mail, and how many jobs have none yet."""
    import psycopg

    query = """
        SELECT EXTRACT(EPOCH FROM n.created_at - (j.late_since + make_interval(secs => j.grace_seconds)))
          FROM jobs_job j
          LEFT JOIN notifications_notification n
            ON n.dedupe_key LIKE 'job-alert:late:' || j.id || ':%'
         WHERE j.late_since IS NOT NULL
    """
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        total = conn.execute("SELECT count(*) FROM jobs_job").fetchone()[0]
        rows = [float(value) for (value,) in conn.execute(query) if value is not None]
    return rows, total - len(rows)


def describe(values: list[float]) -> str:
    return (
        f"mean {statistics.fmean(values):5.1f} s, p50 {percentile(values, 0.5):5.1f} s, "
        f"p99 {percentile(values, 0.99):5.1f} s, max {max(values):5.1f} s ({len(values)} jobs)"
    )


def main() -> None:
    args = parse_args()
    folder = tempfile.mkdtemp(prefix="cronhouse-bench-late-")
    names = {"figure": f"{args.database}_a", "baseline": f"{args.database}_b"}
    checks = {"figure": FIGURE_CHECK_SECONDS, "baseline": BASELINE_CHECK_SECONDS}
    urls = {kind: create_database(args.pg, name, os.path.join(folder, kind)) for kind, name in names.items()}
    beats: list[subprocess.Popen] = []
    try:
        for url in urls.values():
            seed_jobs(url, args.jobs)
        for kind, url in urls.items():
            beats.append(start_beat(url, checks[kind], folder, kind))
        # First slot: the next minute; the last expiry 60 s after it; the baseline's check may
        # come up to a minute later still.
        wait = 60 - time.time() % 60 + FIRST_GRACE_SECONDS + 60 + BASELINE_CHECK_SECONDS + 15
        print(
            f"{args.jobs} jobs per beat, graces {FIRST_GRACE_SECONDS}-{FIRST_GRACE_SECONDS + 60} s; "
            f"waiting {wait:.0f} s"
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            time.sleep(5)
            if any(beat.poll() is not None for beat in beats):
                raise SystemExit(f"a beat exited; logs in {folder}")
        results = {}
        for kind, url in urls.items():
            values, missing = delays(url)
            if missing or not values:
                raise SystemExit(f"{kind}: {missing} jobs without a late alert; logs in {folder}")
            results[kind] = values
    finally:
        for beat in beats:
            try:
                os.killpg(beat.pid, signal.SIGTERM)
                beat.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(beat.pid, signal.SIGKILL)
        for name in names.values():
            drop_database(args.pg, name)

    figure, baseline = results["figure"], results["baseline"]
    print(f"figure   - beat checks every {FIGURE_CHECK_SECONDS:.0f} s:   {describe(figure)}")
    print(f"baseline - a check every {BASELINE_CHECK_SECONDS:.0f} s:     {describe(baseline)}")
    print(
        f"ratio    - figure / baseline: mean {statistics.fmean(figure) / statistics.fmean(baseline):.2f}, "
        f"max {max(figure) / max(baseline):.2f}"
    )
    met = max(figure) < GOAL_SECONDS
    print(f"goal: every alert < {GOAL_SECONDS:.0f} s after grace expiry: {'met' if met else 'MISSED'}")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
