"""Scheduler at scale: ``--jobs`` cron jobs of a realistic mix through real beats for
``--minutes`` minutes (PostgreSQL + Redis): is every due slot recorded exactly once, how late, what
the leader costs, how fast a standby takes over from a killed or hung leader.

Figures: Cronhouse's ``LeaderDatabaseScheduler`` (the Procfile's ``beat``), a leader and a standby,
with the Procfile's ``worker`` line running the runs. Two lags per due slot:

* row booked: an observer polls ``jobs_jobrun`` every 100 ms and stamps when each run row became
  visible (committed): lag = seen - slot;
* body started: the run's ``started_at``, which the worker's claim writes in the statement that
  takes the run, just before it calls the job's command (no extra write per run): lag =
  started_at - slot. It includes the publish, the broker, the worker's queue and the claim; the
  command's own start-up (building its parser, a few ms) follows it.

After the window, the leader is SIGKILLed a few seconds before a minute's slots, then the new
leader SIGSTOPped (a third beat standing by) and resumed: kill / stop -> first row from the standby.

Baseline, in the same run on the same jobs: plain django-celery-beat ``DatabaseScheduler`` with
the same settings, one ``PeriodicTask`` per job (its crontab in the job's timezone) sending
``bench.scale_received``, which a Celery worker (``-c 2``) records with the time it ran:
lag = slot -> task run by the worker (it includes the publish and the worker's queue).

Expected slots come from ``jobs.scheduling.cron.fire_times`` (the engine beat fires on). Each phase
owns a database (``cronhouse_bench_ours`` / ``cronhouse_bench_dcb``, recreated, dropped at the
end) and a Redis db number (9 / 10, flushed). Processes it starts are stopped by PID.

    .venv/bin/python bench/scheduler_scale.py [--jobs 10000] [--minutes 4]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
from config.celery import app  # noqa: E402  (the worker imports this module for its task)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RECEIVED_KEY = "cronhouse:bench:scale:received"
TIMEZONES = ("Europe/London", "America/New_York", "Australia/Sydney")
STEPS = (2, 3, 5, 10, 15, 20, 30)
POLL_SECONDS = 0.1
GOALS = {  # per 10,000 / 100,000 jobs
    "lag_p99": (2.0, 5.0),
    "started_p99": (10.0, 10.0),
    "first_fire": (10.0, 30.0),
    "failover": (10.0, 15.0),
    "rss_mb": (200.0, 500.0),
    "cpu": (0.10, 0.30),
}


@app.task(name="bench.scale_received", ignore_result=True)
def scale_received(name: str) -> None:
    """The baseline's periodic task: record which entry ran, and when."""
    client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    client.rpush(RECEIVED_KEY, json.dumps([name, time.time()]))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--minutes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="cronhouse_bench_ours")
    parser.add_argument("--baseline-database", default="cronhouse_bench_dcb")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--baseline-redis-url", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--drain-timeout", type=float, default=600, help="seconds to wait for the last runs to start")
    return parser.parse_args()


# --- the jobs -------------------------------------------------------------------------------


def job_mix(count: int, rng: random.Random) -> list[dict]:
    """Per 10,000: 96 every minute, 900 */N, 4,000 hourly, 4,000 daily, the rest weekly or
    monthly; 80 % UTC."""
    every_minute, stepped, hourly, daily = (round(count * n / 10000) for n in (96, 900, 4000, 4000))
    crons = ["* * * * *"] * every_minute
    crons += [f"*/{rng.choice(STEPS)} * * * *" for _ in range(stepped)]
    crons += [f"{rng.randrange(60)} * * * *" for _ in range(hourly)]
    crons += [f"{rng.randrange(60)} {rng.randrange(24)} * * *" for _ in range(daily)]
    for _ in range(count - len(crons)):
        minute, hour = rng.randrange(60), rng.randrange(24)
        day = f"* * {rng.randrange(7)}" if rng.random() < 0.5 else f"{rng.randint(1, 28)} * *"
        crons.append(f"{minute} {hour} {day}")
    rng.shuffle(crons)
    return [
        {
            "name": f"bench-{i:06d}",
            "command": "test_job",
            "cron_expression": cron,
            "timezone": "UTC" if rng.random() < 0.8 else rng.choice(TIMEZONES),
        }
        for i, cron in enumerate(crons, 1)
    ]


def expected_slots(jobs: list[dict], start: float, end: float) -> set[tuple[str, float]]:
    """(job name, slot) for every slot in [start, end), by the engine beat fires on."""
    from jobs.scheduling.cron import fire_times

    after = datetime.fromtimestamp(start, UTC) - timedelta(microseconds=1)
    slots = set()
    for job in jobs:
        for instant in fire_times(job["cron_expression"], job["timezone"], after):
            if instant.timestamp() >= end:
                break
            slots.add((job["name"], instant.timestamp()))
    return slots


BASELINE_SCRIPT = """
import json
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks
schedules, tasks = {}, []
for line in open(PATH):
    job = json.loads(line)
    minute, hour, dom, month, dow = job["cron_expression"].split()
    key = (job["cron_expression"], job["timezone"])
    if key not in schedules:
        schedules[key] = CrontabSchedule.objects.create(
            minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow,
            timezone=job["timezone"])
    tasks.append(PeriodicTask(name=job["name"], task="bench.scale_received",
                              args=json.dumps([job["name"]]), crontab=schedules[key]))
PeriodicTask.objects.bulk_create(tasks, batch_size=5000)
PeriodicTasks.update_changed()
"""


# --- processes and services -----------------------------------------------------------------


def environment(args, url: str, broker: str, var: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": broker,
        "CRONHOUSE_VAR_DIR": var,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "JOBS_BEAT_LEADER_LEASE": "true",
        "DEBUG": "false",
    }


def manage(env: dict, *argv: str) -> None:
    subprocess.run([sys.executable, "manage.py", *argv], cwd=BASE_DIR, env=env, check=True)


def start(argv: list[str], env: dict, log: Path, procs: list) -> subprocess.Popen:
    proc = subprocess.Popen(
        argv, cwd=BASE_DIR, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    procs.append(proc)
    return proc


def start_beat(env: dict, scheduler: str, folder: Path, name: str, procs: list) -> subprocess.Popen:
    var = folder / name
    var.mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "celery", "-A", "config", "beat", "-S", scheduler, "--loglevel", "INFO"]
    argv += ["--schedule", str(var / "beat-schedule"), "--pidfile", ""]
    return start(argv, {**env, "CRONHOUSE_VAR_DIR": str(var)}, folder / f"{name}.log", procs)


def procfile_worker(env: dict, folder: Path, procs: list) -> subprocess.Popen:
    """The Procfile's ``worker`` line as it stands (its concurrency, its log level), run by this
    interpreter; returns once it consumes."""
    line = next(line for line in (BASE_DIR / "Procfile").read_text().splitlines() if line.startswith("worker:"))
    argv = line.split(":", 1)[1].split()
    assert argv[0] == "celery", line
    argv = [sys.executable, "-m", "celery", *argv[1:], "--hostname", "scale@%h"]
    log = folder / "ours-worker.log"
    proc = start(argv, env, log, procs)
    wait_for(lambda: " ready." in log.read_text(errors="replace"), 120, "the worker to be ready")
    return proc


def drain(url: str, timeout: float) -> float:
    """Wait until no run is queued or running (every run booked has started and ended)."""
    import psycopg

    began = time.time()
    query = "SELECT count(*) FROM jobs_jobrun WHERE status IN ('queued', 'running')"
    while time.time() - began < timeout:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                if not conn.execute(query).fetchone()[0]:
                    break
        except psycopg.OperationalError:  # another session ended our connection: ask again
            pass
        time.sleep(1)
    return time.time() - began


def stop(proc: subprocess.Popen) -> None:
    """Resume (it may be SIGSTOPped), SIGTERM its process group by PID, SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGCONT, signal.SIGTERM):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def process_sample(pid: int) -> tuple[float, float]:
    """(CPU seconds used so far, RSS in MB) of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    rss = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS"))
    return cpu, int(rss.split()[1]) / 1024


def steady_window(pids: list[int], until: float) -> tuple[float, float]:
    """Sample the processes every second until ``until``: (their CPU as a share of one core,
    the largest RSS any of them reached, in MB)."""
    cpu0 = sum(process_sample(pid)[0] for pid in pids)
    rss_max, t0 = 0.0, time.time()
    while time.time() < until:
        rss_max = max([rss_max] + [process_sample(pid)[1] for pid in pids])
        time.sleep(min(1.0, max(until - time.time(), 0)))
    return (sum(process_sample(pid)[0] for pid in pids) - cpu0) / (time.time() - t0), rss_max


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its children (a worker and its pool)."""
    total = process_sample(pid)[0]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            total += process_sample(int(child))[0]
        except FileNotFoundError:  # a pool process that just ended
            pass
    return total


def sleep_until(moment: float) -> None:
    time.sleep(max(moment - time.time(), 0))


def next_minute(after: float) -> float:
    return math.floor(after / 60) * 60 + 60


def wait_for(done, timeout: float, what: str) -> float:
    deadline = time.time() + timeout
    while not done():
        if time.time() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_SECONDS / 2)
    return time.time()


class Observer(threading.Thread):
    """Polls the run rows and the lease holder every 100 ms; a row is stamped with the time of
    the poll whose snapshot first saw it (an upper bound on its commit, within 100 ms)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.rows: list[tuple[int, int, float, int, str, float]] = []  # id, job, slot, attempt, status, seen
        self.holder = ""
        self.changes: list[tuple[float, str]] = []  # (seen, new holder)
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        self.last = 0
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    self.poll(conn)
            except psycopg.OperationalError:  # another session ended our connection: poll on
                time.sleep(POLL_SECONDS)

    def poll(self, conn) -> None:
        while not self.stopping.is_set():
            seen = time.time()
            rows = conn.execute(
                "SELECT id, job_id, scheduled_for, attempt, status FROM jobs_jobrun WHERE id > %s ORDER BY id",
                (self.last,),
            ).fetchall()
            for row_id, job_id, slot, attempt, status in rows:
                self.rows.append((row_id, job_id, slot.timestamp() if slot else 0.0, attempt, status, seen))
                self.last = row_id
            lease = conn.execute("SELECT holder FROM jobs_leaderlease WHERE name = 'beat'").fetchone()
            if lease and lease[0] != self.holder:
                self.holder = lease[0]
                self.changes.append((seen, lease[0]))
            time.sleep(max(POLL_SECONDS - (time.time() - seen), 0))

    def first_row_after(self, moment: float) -> float | None:
        return next((row[5] for row in self.rows if row[5] > moment), None)

    def leads(self, proc: subprocess.Popen) -> bool:
        return f":{proc.pid}:" in self.holder


def failover_times(observer: Observer, at: float, gone: subprocess.Popen) -> tuple[float, float]:
    """Seconds from ``at`` (the leader killed or stopped) to another beat holding the lease, and
    to the first run row recorded after it."""
    took = wait_for(lambda: observer.holder and not observer.leads(gone), 60, "another beat to take the lease")
    fired = wait_for(lambda: observer.first_row_after(at), 60, "the new leader's first row")
    return took - at, fired - at


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


def coverage(expected: set, counts: Counter, lags: list[float]) -> dict:
    return {
        "expected": len(expected),
        "exactly_one": sum(1 for slot in expected if counts[slot] == 1),
        "missed": sum(1 for slot in expected if counts[slot] == 0),
        "duplicated": sum(1 for slot in expected if counts[slot] > 1),
        "p50": percentile(lags, 0.5),
        "p99": percentile(lags, 0.99),
        "max": max(lags, default=float("nan")),
    }


# --- ours -----------------------------------------------------------------------------------


def run_ours(args, env: dict, url: str, jobs: list[dict], folder: Path, procs: list) -> dict:
    import psycopg

    names = dict(psycopg.connect(url).execute("SELECT id, name FROM jobs_job").fetchall())
    worker = procfile_worker(env, folder, procs)
    observer = Observer(url)
    observer.start()
    scheduler = "jobs.scheduling.beat.LeaderDatabaseScheduler"
    # Started just after a minute's slots fell due: the first fire is beat's start-up.
    sleep_until(next_minute(time.time()) + 1)
    started = time.time()
    leader = start_beat(env, scheduler, folder, "ours-a", procs)
    first_fire = wait_for(lambda: observer.rows, 180, "the first run row") - started
    wait_for(lambda: observer.leads(leader), 30, "the leader lease")
    standby = start_beat(env, scheduler, folder, "ours-b", procs)
    window_start = started - 1 + 60
    window_end = window_start + args.minutes * 60
    sleep_until(window_start)
    worker_cpu0 = tree_cpu(worker.pid)
    cpu, rss = steady_window([leader.pid, standby.pid], window_end)
    worker_cpu = (tree_cpu(worker.pid) - worker_cpu0) / (window_end - window_start)
    print(f"ours: steady window done ({len(observer.rows)} rows so far)", flush=True)

    changes_in_window = sum(1 for at, _ in observer.changes if window_start <= at < window_end)
    rng = random.Random(args.seed + 1)
    beats = {leader: "ours-a", standby: "ours-b"}
    failovers = {}
    # SIGKILL a few seconds before a minute's slots: they are owed while no beat leads.
    killed_at = window_end + 60 - rng.uniform(1, 5)
    sleep_until(killed_at)
    victim = next(proc for proc in beats if observer.leads(proc))
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    del beats[victim]
    failovers["SIGKILL"] = failover_times(observer, killed_at, victim)
    beats[start_beat(env, scheduler, folder, "ours-c", procs)] = "ours-c"
    stopped_at = window_end + 120 - rng.uniform(1, 5)
    sleep_until(stopped_at)
    hung = next(proc for proc in beats if observer.leads(proc))
    os.kill(hung.pid, signal.SIGSTOP)
    failovers["SIGSTOP"] = failover_times(observer, stopped_at, hung)
    time.sleep(5)
    os.kill(hung.pid, signal.SIGCONT)
    resumed_at = time.time()
    end = next_minute(resumed_at + 5) + 20  # one more minute's slots after the hung leader resumed
    sleep_until(end)
    observer.stopping.set()
    observer.join()
    kept_out = not any(f":{hung.pid}:" in holder for at, holder in observer.changes if at > resumed_at)
    lost = "lost the leader lease" in (folder / f"{beats[hung]}.log").read_text()
    for beat in beats:  # no more slots: the worker drains what was booked
        stop(beat)
    drained = drain(url, args.drain_timeout)

    query = "SELECT job_id, scheduled_for FROM jobs_jobrun WHERE attempt = 1 AND scheduled_for IS NOT NULL"
    all_counts = Counter(psycopg.connect(url).execute(query).fetchall())
    query = "SELECT job_id, scheduled_for, started_at FROM jobs_jobrun WHERE attempt = 1 AND started_at IS NOT NULL"
    started = {
        (names[job_id], slot.timestamp()): at.timestamp()
        for job_id, slot, at in psycopg.connect(url).execute(query).fetchall()
        if slot is not None
    }
    seen = {(names[job_id], slot): at for _, job_id, slot, attempt, _, at in observer.rows if attempt == 1}
    counts = Counter({(names[job_id], slot.timestamp()): n for (job_id, slot), n in all_counts.items()})
    expected = expected_slots(jobs, window_start, window_end)
    lags = [seen[slot] - slot[1] for slot in expected if slot in seen]
    started_lags = [started[slot] - slot[1] for slot in expected if slot in started]
    failover_slots = expected_slots(jobs, window_end, next_minute(resumed_at + 5) + 1)
    failover_lags = [seen[slot] - slot[1] for slot in failover_slots if slot in seen]
    statuses = Counter(row[4] for row in observer.rows)
    final = Counter(status for (status,) in psycopg.connect(url).execute("SELECT status FROM jobs_jobrun"))
    return {
        "started": {
            "count": len(started_lags),
            "p50": percentile(started_lags, 0.5),
            "p99": percentile(started_lags, 0.99),
            "max": max(started_lags, default=float("nan")),
            "drained_after": drained,
            "final_statuses": dict(final),
            "worker_cpu": worker_cpu,
        },
        "first_fire": first_fire,
        "cpu": cpu,
        "rss": rss,
        "window": coverage(expected, counts, lags),
        "failover_window": coverage(failover_slots, counts, failover_lags),
        "failovers": failovers,
        "max_rows_per_slot": max(all_counts.values(), default=0),
        "statuses": dict(statuses),
        "resumed_kept_out": kept_out and lost,
        "changes_in_window": changes_in_window,
    }


# --- baseline -------------------------------------------------------------------------------


def run_baseline(args, env: dict, jobs: list[dict], folder: Path, procs: list) -> dict:
    from jobs.scheduling.cron import previous_run_time

    client = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    worker_argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-c", "2", "-I", "bench.scheduler_scale"]
    worker_argv += ["--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--hostname", "scale@%h"]
    start(worker_argv, env, folder / "dcb-worker.log", procs)
    sleep_until(next_minute(time.time() + 15) + 1)
    started = time.time()
    beat = start_beat(env, "django_celery_beat.schedulers:DatabaseScheduler", folder, "dcb", procs)
    window_start = started - 1 + 60
    window_end = window_start + args.minutes * 60
    sleep_until(window_start)
    cpu, rss = steady_window([beat.pid], window_end)
    sleep_until(window_end + 30)  # sends still in flight for the window's last slots
    received = [json.loads(item) for item in client.lrange(RECEIVED_KEY, 0, -1)]
    by_name = {job["name"]: job for job in jobs}
    counts: Counter = Counter()
    lags = []
    for name, at in received:
        job = by_name[name]
        slot = previous_run_time(job["cron_expression"], job["timezone"], datetime.fromtimestamp(at, UTC))
        counts[(name, slot.timestamp())] += 1
        if window_start <= slot.timestamp() < window_end:
            lags.append(at - slot.timestamp())
    first = min((at for _, at in received), default=float("nan"))
    return {
        "first_fire": first - started,
        "cpu": cpu,
        "rss": rss,
        "window": coverage(expected_slots(jobs, window_start, window_end), counts, lags),
    }


# --- report ---------------------------------------------------------------------------------


def report(args, ours: dict, base: dict | None, import_seconds: float) -> None:
    col = 0 if args.jobs <= 10000 else 1
    goal = {key: values[col] for key, values in GOALS.items()}
    w = ours["window"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"\n{args.jobs} jobs, window {args.minutes} min, import_jobs {import_seconds:.1f} s")
    print(
        f"ours     - due slots with exactly one row: {w['exactly_one']}/{w['expected']} "
        f"({100 * w['exactly_one'] / max(w['expected'], 1):.2f} %), missed {w['missed']}, "
        f"duplicated {w['duplicated']}; rows by status {ours['statuses']}"
    )
    print(
        f"ours     - lag slot -> row committed: p50 {w['p50']:.2f} s, p99 {w['p99']:.2f} s, max {w['max']:.2f} s "
        f"(goal p99 < {goal['lag_p99']:.0f} s: {verdict(w['p99'] < goal['lag_p99'])})"
    )
    st = ours["started"]
    print(
        f"ours     - lag slot -> body started on the worker (the run's started_at, written by the claim just "
        f"before the command runs): p50 {st['p50']:.2f} s, p99 {st['p99']:.2f} s, max {st['max']:.2f} s; "
        f"{st['count']}/{w['expected']} slots started (goal p99 <= {goal['started_p99']:.0f} s: "
        f"{verdict(st['p99'] <= goal['started_p99'] and st['count'] == w['expected'])})"
    )
    print(
        f"ours     - worker (the Procfile's line): CPU {100 * st['worker_cpu']:.1f} % of a core over the window; "
        f"queue drained {st['drained_after']:.0f} s after the end; runs by final status {st['final_statuses']}"
    )
    print(
        f"ours     - leader start -> first fire: {ours['first_fire']:.1f} s "
        f"(goal < {goal['first_fire']:.0f} s: {verdict(ours['first_fire'] < goal['first_fire'])})"
    )
    for how, (lease, fired) in ours["failovers"].items():
        print(
            f"ours     - failover, leader {how}: lease taken {lease:.1f} s, first row {fired:.1f} s "
            f"(goal < {goal['failover']:.0f} s: {verdict(fired < goal['failover'])})"
        )
    f = ours["failover_window"]
    print(
        f"ours     - slots due during the failovers: {f['exactly_one']}/{f['expected']} exactly one row, "
        f"lag p50 {f['p50']:.1f} s, max {f['max']:.1f} s; most rows for one slot {ours['max_rows_per_slot']}; "
        f"resumed leader kept out: {ours['resumed_kept_out']}"
    )
    print(f"ours     - lease changes during the steady window: {ours['changes_in_window']}")
    print(
        f"ours     - leader + standby: RSS max {ours['rss']:.0f} MB (goal < {goal['rss_mb']:.0f}: "
        f"{verdict(ours['rss'] < goal['rss_mb'])}), CPU together {100 * ours['cpu']:.1f} % of a core "
        f"(goal < {100 * goal['cpu']:.0f} %: {verdict(ours['cpu'] < goal['cpu'])})"
    )
    if base is None:
        return
    b = base["window"]
    print(
        f"baseline - django-celery-beat DatabaseScheduler: exactly one {b['exactly_one']}/{b['expected']} "
        f"({100 * b['exactly_one'] / max(b['expected'], 1):.2f} %), missed {b['missed']}, "
        f"duplicated {b['duplicated']}"
    )
    print(
        f"baseline - lag slot -> task run by the worker: p50 {b['p50']:.2f} s, p99 {b['p99']:.2f} s, "
        f"max {b['max']:.2f} s; start -> first send {base['first_fire']:.1f} s; RSS max {base['rss']:.0f} MB, "
        f"CPU {100 * base['cpu']:.1f} % of a core"
    )
    print(
        f"ratio    - lag p99 baseline / ours {b['p99'] / w['p99']:.1f}x; RSS {base['rss'] / ours['rss']:.1f}x; "
        f"CPU {base['cpu'] / max(ours['cpu'], 1e-9):.1f}x; missed slots {b['missed']} vs {w['missed']}"
    )


def main() -> None:
    args = parse_args()
    from bench.runner_overhead import drop_database, recreate_database

    folder = Path(tempfile.mkdtemp(prefix="cronhouse-bench-scale-"))
    jobs = job_mix(args.jobs, random.Random(args.seed))
    jobs_file = folder / "jobs.jsonl"
    jobs_file.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    url = f"{args.pg}/{args.database}"
    base_url = f"{args.pg}/{args.baseline_database}"
    env = environment(args, url, args.redis_url, str(folder / "ours"))
    base_env = environment(args, base_url, args.baseline_redis_url, str(folder / "dcb"))
    procs: list[subprocess.Popen] = []
    try:
        for name, broker in ((args.database, args.redis_url), (args.baseline_database, args.baseline_redis_url)):
            recreate_database(args.pg, name)
            redis.Redis.from_url(broker).flushdb()
        manage(env, "migrate", "--noinput", "-v", "0")
        began = time.time()
        manage(env, "import_jobs", str(jobs_file), "-v", "0")
        import_seconds = time.time() - began
        if not args.skip_baseline:
            manage(base_env, "migrate", "--noinput", "-v", "0")
            manage(base_env, "shell", "-c", f"PATH = {str(jobs_file)!r}\n{BASELINE_SCRIPT}")
        print(f"{args.jobs} jobs imported in {import_seconds:.1f} s; logs in {folder}", flush=True)
        ours = run_ours(args, env, url, jobs, folder, procs)
        for proc in procs:
            stop(proc)
        print("ours done; baseline next", flush=True)
        base = None if args.skip_baseline else run_baseline(args, base_env, jobs, folder, procs)
    finally:
        for proc in procs:
            stop(proc)
        for name, broker in ((args.database, args.redis_url), (args.baseline_database, args.baseline_redis_url)):
            drop_database(args.pg, name)
            redis.Redis.from_url(broker).flushdb()
    report(args, ours, base, import_seconds)


if __name__ == "__main__":
    main()
