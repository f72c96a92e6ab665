"""Runner overhead: N runs of a no-op job through one Celery worker against N bare no-op Celery
tasks on the same broker, in one run, as a ratio. Goal: the platform keeps at least half of
bare Celery's throughput.

Both sides go through one real ``celery -A config worker -c 2`` process on PostgreSQL + Redis
(eager mode would hide the per-task database cost, see bench/README.md):

* bare: ``bench.noop`` (bench/bench_tasks.py, imported by the worker only for this benchmark)
  sent N times; done when its Redis counter reaches N;
* runner: N distinct jobs running ``test_job`` (one job allows one active run at a time), each
  triggered once through ``jobs.running.runner.run_trigger`` exactly as "Run now" does (row committed,
  message published on commit); done when all N runs are ``succeeded``.

Each side is measured twice:

* worker throughput (the headline): the worker stops consuming, all N messages are queued
  (runs triggered), the worker resumes; N / (resume -> last completion);
* end to end: N / (first send or trigger -> last completion), with this process triggering
  while the worker executes, both on this machine.

The benchmark owns a database (``cronhouse_bench``, dropped and recreated) and a Redis db
number (15, flushed), so it never touches a development or test database.

    .venv/bin/python bench/runner_overhead.py [-n 2000] [--database cronhouse_bench] [--redis-db 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
GOAL = 0.5
JOB_PREFIX = "bench-noop-"
WARMUP_PREFIX = "bench-warmup-"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=2000, help="runs and bare tasks to measure (default 2000)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL, no database")
    parser.add_argument("--database", default="cronhouse_bench", help="database to (re)create and drop")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="Redis server URL, no db number")
    parser.add_argument("--redis-db", type=int, default=15, help="Redis db number to use and flush (default 15)")
    parser.add_argument("--timeout", type=float, default=180, help="give up on a phase after this many seconds")
    parser.add_argument("--skip-end-to-end", action="store_true", help="measure worker throughput only")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/runner rounds; medians compared")
    parser.add_argument("--keep", action="store_true", help="keep the database and worker log afterwards")
    return parser.parse_args()


# --- services -----------------------------------------------------------------------------


def recreate_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_until(done, *, timeout: float, what: str, interval: float = 0.01) -> float:
    """Poll ``done()`` until true; returns the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic()


# --- the worker ---------------------------------------------------------------------------


def start_worker(log_path: Path, concurrency: int) -> subprocess.Popen:
    argv = [
        sys.executable,
        *"-m celery -A config worker".split(),
        "-c",
        str(concurrency),
        "-I",
        "bench.bench_tasks",
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--hostname",
        "bench@%h",
    ]
    log = log_path.open("wb")
    return subprocess.Popen(
        argv, cwd=BASE_DIR, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop_worker(proc: subprocess.Popen) -> None:
    """SIGTERM the worker's process group (main + pool children) by its PID; SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    proc.wait(timeout=10)


def worker_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by the worker and its live pool processes.

    Pool processes live for the whole benchmark (no max-tasks-per-child), so the difference
    over a phase is the CPU the worker spent on that phase, whatever else loads the machine.
    """
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    total, frontier = 0.0, [pid]
    while frontier:
        current = frontier.pop()
        total += stats.get(current, (0, 0.0))[1]
        frontier += [child for child, (ppid, _) in stats.items() if ppid == current]
    return total


def pause_consumer() -> None:
    """The worker stops taking messages (its pool stays up), so a whole batch can be queued first."""
    from config.celery import app

    if not app.control.cancel_consumer("celery", reply=True, timeout=5, limit=1):
        raise SystemExit("the worker did not answer cancel_consumer")
    # The Redis transport applies a cancel only once its current blocking read returns.
    time.sleep(1.5)


def resume_consumer() -> None:
    from config.celery import app

    if not app.control.add_consumer("celery", reply=True, timeout=5, limit=1):
        raise SystemExit("the worker did not answer add_consumer")


def check_paused(done: int, what: str) -> None:
    # The worker may still hold its prefetch (concurrency x multiplier) from before the pause.
    if done > 4:
        raise SystemExit(f"{done} {what} ran while the worker was paused; the drain figure would be wrong")


# --- the two sides ------------------------------------------------------------------------


@dataclass
class Phase:
    seconds: float  # first send (drain: the moment consumption resumed) -> last task or run done
    send_seconds: float  # time spent sending tasks / triggering runs
    worker_cpu: float  # CPU seconds the worker's processes used from first send to last completion

    def rate(self, n: int) -> float:
        return n / self.seconds


def bare_phase(n: int, worker_pid: int, timeout: float, *, drain: bool) -> Phase:
    from bench.bench_tasks import DONE_KEY, counter, noop

    client = counter()
    client.delete(DONE_KEY)
    if drain:
        pause_consumer()
    cpu = worker_cpu_seconds(worker_pid)
    start = time.monotonic()
    for _ in range(n):
        noop.delay()
    send_seconds = time.monotonic() - start
    if drain:
        check_paused(int(client.get(DONE_KEY) or 0), "bare tasks")
        resume_consumer()
        start = time.monotonic()
    end = wait_until(lambda: int(client.get(DONE_KEY) or 0) >= n, timeout=timeout, what=f"{n} bare tasks")
    return Phase(end - start, send_seconds, worker_cpu_seconds(worker_pid) - cpu)


def make_jobs(prefix: str, count: int) -> list:
    """``count`` no-op jobs. bulk_create writes no schedule rows: no beat runs here."""
    from jobs.models import Job

    Job.objects.bulk_create(
        Job(name=f"{prefix}{i:05d}", command="test_job", cron_expression="0 0 1 1 *", timeout_seconds=60)
        for i in range(count)
    )
    return list(Job.objects.filter(name__startswith=prefix).order_by("name"))


def trigger_all(jobs: list) -> None:
    from jobs.models import JobRun
    from jobs.running.runner import run_trigger

    for job in jobs:
        result = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL)
        if not result.queued:
            raise SystemExit(f"trigger of {job.name} was {result.outcome}, expected queued")


def runs_after(floor: int):
    from jobs.models import JobRun

    return JobRun.objects.filter(pk__gt=floor)


def runs_done(floor: int) -> int:
    from jobs.models import JobRun

    return runs_after(floor).exclude(status__in=JobRun.ACTIVE_STATUSES).count()


def runs_active(floor: int) -> bool:
    from jobs.models import JobRun

    return runs_after(floor).filter(status__in=JobRun.ACTIVE_STATUSES).exists()


def last_run_pk() -> int:
    from jobs.models import JobRun

    return JobRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def runner_phase(jobs: list, worker_pid: int, timeout: float, *, drain: bool) -> Phase:
    from django.db.models import Count

    from jobs.models import JobRun

    n = len(jobs)
    floor = last_run_pk()
    if drain:
        pause_consumer()
    cpu = worker_cpu_seconds(worker_pid)
    start = time.monotonic()
    trigger_all(jobs)
    send_seconds = time.monotonic() - start
    if drain:
        check_paused(runs_done(floor), "runs")
        resume_consumer()
        start = time.monotonic()
    # Poll the small partial index of active runs, not a COUNT over the table: the poll must
    # not load PostgreSQL while the worker is being measured (the bare side polls Redis).
    end = wait_until(lambda: not runs_active(floor), timeout=timeout, what=f"{n} runs", interval=0.02)
    worker_cpu = worker_cpu_seconds(worker_pid) - cpu
    statuses = dict(runs_after(floor).values_list("status").annotate(n=Count("id")))
    if statuses != {JobRun.Status.SUCCEEDED: n}:
        raise SystemExit(f"expected {n} succeeded runs, got {statuses}")
    return Phase(end - start, send_seconds, worker_cpu)


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    n = args.runs
    scratch = Path(tempfile.mkdtemp(prefix="cronhouse-bench-"))
    broker_url = f"{args.redis.rstrip('/')}/{args.redis_db}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"{args.pg.rstrip('/')}/{args.database}",
        CELERY_BROKER_URL=broker_url,
        CRONHOUSE_VAR_DIR=str(scratch / "var"),
        # What production runs: no DEBUG query log; settings' connection reuse (CONN_MAX_AGE,
        # CELERY_DB_REUSE_MAX) left as configured.
        DEBUG="false",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
    )
    sys.path.insert(0, str(BASE_DIR))
    os.chdir(BASE_DIR)

    import django
    import redis

    recreate_database(args.pg.rstrip("/"), args.database)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(broker_url).flushdb()
    jobs = make_jobs(JOB_PREFIX, n)
    warmup_jobs = make_jobs(WARMUP_PREFIX, 20)

    from bench.bench_tasks import DONE_KEY, counter, noop

    started = time.monotonic()
    worker_log = scratch / "worker.log"
    worker = start_worker(worker_log, args.concurrency)
    failed = True
    try:
        # Warm up both kinds of task in every pool process (imports, connections) before timing.
        for _ in range(50):
            noop.delay()
        wait_until(lambda: int(counter().get(DONE_KEY) or 0) >= 50, timeout=60, what="the worker to start")
        floor = last_run_pk()
        trigger_all(warmup_jobs)
        wait_until(lambda: runs_done(floor) >= len(warmup_jobs), timeout=60, what="warm-up runs")

        # Alternate the two sides for several rounds and compare medians: on a shared machine
        # one phase can land in a noisy second and the other in a quiet one.
        rounds = [
            (
                bare_phase(n, worker.pid, args.timeout, drain=True),
                runner_phase(jobs, worker.pid, args.timeout, drain=True),
            )
            for _ in range(args.rounds)
        ]
        bare = sorted((pair[0] for pair in rounds), key=lambda phase: phase.seconds)[len(rounds) // 2]
        runner = sorted((pair[1] for pair in rounds), key=lambda phase: phase.seconds)[len(rounds) // 2]
        if not args.skip_end_to_end:
            bare_e2e = bare_phase(n, worker.pid, args.timeout, drain=False)
            runner_e2e = runner_phase(jobs, worker.pid, args.timeout, drain=False)
        failed = False
    finally:
        stop_worker(worker)
        if failed:
            print(f"worker log: {worker_log}\n" + worker_log.read_text(errors="replace")[-3000:], file=sys.stderr)

    ratio = runner.rate(n) / bare.rate(n)
    print(f"{n} no-op runs vs {n} bare no-op tasks, one worker -c {args.concurrency}, PostgreSQL + Redis")
    print(
        f"  send/trigger only     bare {n / bare.send_seconds:6.0f}/s   runner {n / runner.send_seconds:6.0f}/s"
        "   (this process, queue paused)"
    )
    bare_cpu, runner_cpu = bare.worker_cpu / n * 1000, runner.worker_cpu / n * 1000
    print(f"  worker CPU per task   bare {bare_cpu:6.2f}ms  runner {runner_cpu:6.2f}ms")
    per_round = "  ".join(f"{r.rate(n) / b.rate(n):.2f}" for b, r in rounds)
    print(f"  per-round ratios      {per_round}   (median of {len(rounds)} alternating rounds below)")
    print(f"  worker throughput     bare {bare.rate(n):6.0f}/s   runner {runner.rate(n):6.0f}/s   ratio {ratio:.2f}")
    if not args.skip_end_to_end:
        e2e = runner_e2e.rate(n) / bare_e2e.rate(n)
        print(
            f"  end to end            bare {bare_e2e.rate(n):6.0f}/s   runner {runner_e2e.rate(n):6.0f}/s"
            f"   ratio {e2e:.2f}   (trigger + run, sharing this machine)"
        )
    print(
        f"runner: {runner.rate(n):.0f} runs/s  bare celery: {bare.rate(n):.0f} tasks/s  "
        f"ratio {ratio:.2f} (goal >= {GOAL}) {'OK' if ratio >= GOAL else 'MISSED'}"
        f"   [{time.monotonic() - started:.0f}s]"
    )

    from django.db import connections

    connections.close_all()
    redis.Redis.from_url(broker_url).flushdb()
    if args.keep:
        print(f"kept database {args.database} and {scratch}")
    else:
        drop_database(args.pg.rstrip("/"), args.database)
        shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(0 if ratio >= GOAL else 1)


if __name__ == "__main__":
    main()
