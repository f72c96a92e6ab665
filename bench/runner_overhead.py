"""Runner overhead: N runs of a no-op job against N no-op Celery tasks, bare and with their results
recorded by django-celery-results, in one run, three rounds. Goals: Cronhouse keeps at least the
throughput of Celery + django-celery-results (what a Django user runs to keep a history of every
task) and at least half of bare Celery's.

Every side goes through real ``celery -A config worker -c 2`` processes on PostgreSQL + Redis
(eager mode would hide the per-task database cost, see bench/README.md):

* bare: ``bench.noop`` (bench/bench_tasks.py, imported by the worker only for this benchmark)
  sent N times; done when its Redis counter reaches N;
* recorded: ``bench.recorded_noop`` sent N times to a second worker, started with
  bench/results_settings.py (``CELERY_RESULT_BACKEND = "django-db"``, extended) on its own
  queue; done when its N result rows are stored;
* Cronhouse: N distinct jobs running ``test_job`` (one job allows one active run at a time),
  each triggered once through ``jobs.running.runner.run_trigger`` exactly as "Run now" does (row
  committed, message published on commit); done when all N runs are ``succeeded``.

Each round measures each side twice:

* drained (the headline): the worker stops consuming, all N messages are queued (runs
  triggered), the worker resumes; N / (resume -> last completion);
* end to end: N / (first send or trigger -> last completion), with this process sending while
  the worker executes, both on this machine.

Worker CPU per task or run is the CPU its worker's processes used over the phase, divided by N.

django-celery-results is a benchmark-only dependency: if it is missing, the benchmark installs
the version below into this interpreter's environment (``pip install --no-deps``).

The benchmark owns a database (``cronhouse_bench``, dropped and recreated) and a Redis db
number (15, flushed), so it never touches a development or test database.

    .venv/bin/python bench/runner_overhead.py [-n 1000] [--rounds 3] [--database cronhouse_bench] [--redis-db 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
GOAL_BARE = 0.5
GOAL_RECORDED = 1.0
RESULTS_PACKAGE = "django-celery-results==2.6.0"
RECORDED_QUEUE = "bench-recorded"
JOB_PREFIX = "bench-noop-"
WARMUP_PREFIX = "bench-warmup-"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=1000, help="tasks or runs per side (default 1000)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL, no database")
    parser.add_argument("--database", default="cronhouse_bench", help="database to (re)create and drop")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="Redis server URL, no db number")
    parser.add_argument("--redis-db", type=int, default=15, help="Redis db number to use and flush (default 15)")
    parser.add_argument("--timeout", type=float, default=180, help="give up on a phase after this many seconds")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three sides; medians compared")
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


def start_worker(log_path: Path, concurrency: int, *, name: str, queue: str, settings: str) -> subprocess.Popen:
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
        f"{name}@%h",
        "-Q",
        queue,
    ]
    log = log_path.open("wb")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=settings)
    return subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


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


@dataclass
class Worker:
    proc: subprocess.Popen
    hostname: str
    queue: str

    @property
    def pid(self) -> int:
        return self.proc.pid


def pause_consumer(worker: Worker) -> None:
    """The worker stops taking messages (its pool stays up), so a whole batch can be queued first."""
    from config.celery import app

    if not app.control.cancel_consumer(worker.queue, destination=[worker.hostname], reply=True, timeout=5):
        raise SystemExit(f"{worker.hostname} did not answer cancel_consumer")
    # The Redis transport applies a cancel only once its current blocking read returns.
    time.sleep(1.5)


def resume_consumer(worker: Worker) -> None:
    from config.celery import app

    if not app.control.add_consumer(worker.queue, destination=[worker.hostname], reply=True, timeout=5):
        raise SystemExit(f"{worker.hostname} did not answer add_consumer")


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


def bare_phase(n: int, worker: Worker, timeout: float, *, drain: bool) -> Phase:
    from bench.bench_tasks import DONE_KEY, counter, noop

    client = counter()
    client.delete(DONE_KEY)
    if drain:
        pause_consumer(worker)
    cpu = worker_cpu_seconds(worker.pid)
    start = time.monotonic()
    for _ in range(n):
        noop.delay()
    send_seconds = time.monotonic() - start
    if drain:
        check_paused(int(client.get(DONE_KEY) or 0), "bare tasks")
        resume_consumer(worker)
        start = time.monotonic()
    end = wait_until(lambda: int(client.get(DONE_KEY) or 0) >= n, timeout=timeout, what=f"{n} bare tasks")
    return Phase(end - start, send_seconds, worker_cpu_seconds(worker.pid) - cpu)


def results_stored() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_celery_results_taskresult WHERE status = 'SUCCESS'")
        return cursor.fetchone()[0]


def recorded_phase(n: int, worker: Worker, timeout: float, *, drain: bool) -> Phase:
    from django.db import connection

    from bench.bench_tasks import recorded_noop

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE django_celery_results_taskresult")
    if drain:
        pause_consumer(worker)
    cpu = worker_cpu_seconds(worker.pid)
    start = time.monotonic()
    for _ in range(n):
        recorded_noop.apply_async(queue=RECORDED_QUEUE)
    send_seconds = time.monotonic() - start
    if drain:
        check_paused(results_stored(), "recorded tasks")
        resume_consumer(worker)
        start = time.monotonic()
    # A COUNT over at most N rows, every 20 ms: small beside the worker's own load.
    end = wait_until(lambda: results_stored() >= n, timeout=timeout, what=f"{n} stored results", interval=0.02)
    return Phase(end - start, send_seconds, worker_cpu_seconds(worker.pid) - cpu)


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


def runner_phase(jobs: list, worker: Worker, timeout: float, *, drain: bool) -> Phase:
    from django.db.models import Count

    from jobs.models import JobRun

    n = len(jobs)
    floor = last_run_pk()
    if drain:
        pause_consumer(worker)
    cpu = worker_cpu_seconds(worker.pid)
    start = time.monotonic()
    trigger_all(jobs)
    send_seconds = time.monotonic() - start
    if drain:
        check_paused(runs_done(floor), "runs")
        resume_consumer(worker)
        start = time.monotonic()
    # Poll the small partial index of active runs, not a COUNT over the table: the poll must
    # not load PostgreSQL while the worker is being measured (the bare side polls Redis).
    end = wait_until(lambda: not runs_active(floor), timeout=timeout, what=f"{n} runs", interval=0.02)
    worker_cpu = worker_cpu_seconds(worker.pid) - cpu
    statuses = dict(runs_after(floor).values_list("status").annotate(n=Count("id")))
    if statuses != {JobRun.Status.SUCCEEDED: n}:
        raise SystemExit(f"expected {n} succeeded runs, got {statuses}")
    return Phase(end - start, send_seconds, worker_cpu)


# --- main ---------------------------------------------------------------------------------


def results_backend_install() -> None:
    """django-celery-results is a benchmark-only dependency: installed here when missing."""
    try:
        import django_celery_results  # noqa: F401
    except ImportError:
        print(f"installing {RESULTS_PACKAGE} (benchmark only) into {sys.prefix}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", RESULTS_PACKAGE], check=True)


SIDES = ("bare", "recorded", "cronhouse")
LABELS = {
    "bare": "bare Celery task",
    "recorded": "Celery + django-celery-results",
    "cronhouse": "Cronhouse run (no-op job)",
}


def median_phase(phases: list[Phase]) -> Phase:
    return sorted(phases, key=lambda phase: phase.seconds)[len(phases) // 2]


def report(n: int, mode: str, measured: dict[str, list[Phase]]) -> dict[str, float]:
    print(f"  {mode}:")
    rates = {}
    for side in SIDES:
        phases = measured[side]
        per_round = [phase.rate(n) for phase in phases]
        cpu = [phase.worker_cpu / n * 1000 for phase in phases]
        rates[side] = median_phase(phases).rate(n)
        print(
            f"    {LABELS[side]:<32} {rates[side]:6.0f}/s (rounds {min(per_round):.0f}-{max(per_round):.0f})"
            f"   worker CPU {min(cpu):.2f}-{max(cpu):.2f} ms per task"
        )
    for baseline, goal in (("recorded", GOAL_RECORDED), ("bare", GOAL_BARE)):
        ratios = [c.rate(n) / b.rate(n) for b, c in zip(measured[baseline], measured["cronhouse"], strict=True)]
        print(
            f"    Cronhouse / {LABELS[baseline]:<32} {rates['cronhouse'] / rates[baseline]:.2f} (medians; rounds "
            f"{', '.join(f'{r:.2f}' for r in ratios)}; goal >= {goal})"
        )
    return rates


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
    results_backend_install()

    import django
    import redis

    recreate_database(args.pg.rstrip("/"), args.database)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    migrate = [sys.executable, "manage.py", "migrate", "django_celery_results", "--verbosity", "0"]
    results_env = dict(os.environ, DJANGO_SETTINGS_MODULE="bench.results_settings")
    subprocess.run(migrate, cwd=BASE_DIR, env=results_env, check=True)
    redis.Redis.from_url(broker_url).flushdb()
    jobs = make_jobs(JOB_PREFIX, n)
    warmup_jobs = make_jobs(WARMUP_PREFIX, 20)

    from bench.bench_tasks import DONE_KEY, counter, noop, recorded_noop

    started = time.monotonic()
    host = socket.gethostname()
    logs = {"shipped": scratch / "worker.log", "recorded": scratch / "worker-recorded.log"}
    shipped = Worker(
        start_worker(logs["shipped"], args.concurrency, name="bench", queue="celery", settings="config.settings"),
        f"bench@{host}",
        "celery",
    )
    recorded = Worker(
        start_worker(
            logs["recorded"], args.concurrency, name="recorded", queue=RECORDED_QUEUE, settings="bench.results_settings"
        ),
        f"recorded@{host}",
        RECORDED_QUEUE,
    )
    worker_of = {"bare": shipped, "recorded": recorded, "cronhouse": shipped}
    measure = {
        "bare": lambda drain: bare_phase(n, shipped, args.timeout, drain=drain),
        "recorded": lambda drain: recorded_phase(n, recorded, args.timeout, drain=drain),
        "cronhouse": lambda drain: runner_phase(jobs, shipped, args.timeout, drain=drain),
    }
    drained: dict[str, list[Phase]] = {side: [] for side in SIDES}
    end_to_end: dict[str, list[Phase]] = {side: [] for side in SIDES}
    failed = True
    try:
        # Warm up every kind of task in every pool process (imports, connections) before timing.
        for _ in range(50):
            noop.delay()
            recorded_noop.apply_async(queue=RECORDED_QUEUE)
        wait_until(lambda: int(counter().get(DONE_KEY) or 0) >= 50, timeout=60, what="the worker to start")
        wait_until(lambda: results_stored() >= 50, timeout=60, what="the recording worker to start")
        floor = last_run_pk()
        trigger_all(warmup_jobs)
        wait_until(lambda: runs_done(floor) >= len(warmup_jobs), timeout=60, what="warm-up runs")

        # The sides take turns within each round: on a shared machine one phase can land in a
        # noisy second and another in a quiet one; medians over the rounds are compared.
        for round_number in range(args.rounds):
            for side in SIDES:
                drained[side].append(measure[side](True))
            for side in SIDES:
                end_to_end[side].append(measure[side](False))
            print(f"  round {round_number + 1} done [{time.monotonic() - started:.0f}s]", file=sys.stderr)
        failed = False
    finally:
        for worker in worker_of.values():
            stop_worker(worker.proc)
        if failed:
            for log in logs.values():
                print(f"worker log: {log}\n" + log.read_text(errors="replace")[-3000:], file=sys.stderr)

    print(
        f"{n} no-op tasks or runs per side, workers -c {args.concurrency}, PostgreSQL + Redis, "
        f"{args.rounds} rounds; load before: {LOAD_BEFORE}, after: {os.getloadavg()[0]:.2f}"
    )
    rates = report(n, "drained (worker paused while all N are queued, then resumed)", drained)
    report(n, "end to end (first send or trigger -> last done, sender on the same machine)", end_to_end)
    met = rates["cronhouse"] >= GOAL_RECORDED * rates["recorded"] and rates["cronhouse"] >= GOAL_BARE * rates["bare"]
    print(
        f"cronhouse: {rates['cronhouse']:.0f} runs/s  celery+results: {rates['recorded']:.0f}/s  "
        f"bare celery: {rates['bare']:.0f}/s  ratios {rates['cronhouse'] / rates['recorded']:.2f} / "
        f"{rates['cronhouse'] / rates['bare']:.2f} (goals >= {GOAL_RECORDED} / >= {GOAL_BARE}) "
        f"{'OK' if met else 'MISSED'}   [{time.monotonic() - started:.0f}s]"
    )

    from django.db import connections

    connections.close_all()
    redis.Redis.from_url(broker_url).flushdb()
    if args.keep:
        print(f"kept database {args.database} and {scratch}")
    else:
        drop_database(args.pg.rstrip("/"), args.database)
        shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(0 if met else 1)


LOAD_BEFORE = ", ".join(f"{value:.2f}" for value in os.getloadavg())

if __name__ == "__main__":
    main()
