"""POST /api/jobs/run against the view a Celery user would write instead, under wrk on loopback.

The baseline (``/bench/send-task``, bench/api_trigger_urls.py) does what the API does minus the
run record: the same bearer check and rate limit, the JSON body parsed, Celery's ``send_task``,
202. Both are served by one gunicorn started as the Procfile starts it (``config.wsgi``,
its worker class, workers and threads), bound to 127.0.0.1, with the same settings, middleware, rate limit (set high)
and Redis cache, so the ratio is the price of the durable run.

1. (Re)creates the database ``cronhouse_bench_api``, migrates it and bulk-creates the jobs (no
   Celery worker runs, so a triggered job stays queued and its messages stay in Redis db 15).
2. Alternates wrk rounds: baseline, then API. Each request names the next job of a fresh slice
   of the pool, so it starts a run; every ``--repeat-every``-th request names the job of the one
   before it, so the skip path (409, a recorded skipped run) is loaded too, racing its twin.
3. Accounts for every API answer in the database: each 202's run id is a queued API run whose
   message was sent, each 409's id a skipped API run, no id twice; the queue holds one message
   per queued run; the only runs nobody read an answer for are those in flight when wrk stopped.
4. Prints req/s, p99 latency and server CPU per request of both sides (medians over the rounds)
   and the ratio.

    .venv/bin/python bench/api_trigger.py [--rounds 2] [--seconds 10] [--connections 16] [--jobs 20000]

Needs Debian's ``wrk`` (apt-get install wrk). Uses only loopback, its own database and Redis db 15.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from string import Template

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.runner_overhead import drop_database, recreate_database, worker_cpu_seconds  # noqa: E402

GOAL = 0.5
API_KEY = "bench-api-key-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d"
API_PATH = "/api/jobs/run"
BASELINE_PATH = "/bench/send-task"
QUEUE = "celery"  # Celery's default queue, where both sides' messages go

WRK_SCRIPT = Template("""
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  counter = 0
  statuses = {}
  ids = {}
end
request = function()
  counter = counter + 1
  local n = counter
  if n % $repeat == 0 then n = n - 1 end
  local job = $offset + (id * $stride + n) % $jobs
  return wrk.format("POST", "$path",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $key"},
    '{"job": "bench-' .. job .. '"}')
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local queued = body:match('"run_id": (%d+)')
  local skipped = body:match('"skipped_run_id": (%d+)')
  if status == 202 and queued then table.insert(ids, "q" .. queued) end
  if status == 409 and skipped then table.insert(ids, "s" .. skipped) end
end
done = function(summary, latency, requests)
  local file = io.open("$ids_file", "w")
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do io.write("STATUS ", code, " ", n, "\\n") end
    for _, one in ipairs(thread:get("ids")) do file:write(one, "\\n") end
  end
  file:close()
  io.write(string.format("P99_US %d\\n", latency:percentile(99)))
end
""")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternating baseline/API rounds (default 2)")
    parser.add_argument("--seconds", type=int, default=10, help="length of one wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--jobs", type=int, default=20000, help="jobs per round, more than a round's requests")
    parser.add_argument("--repeat-every", type=int, default=20, help="every Nth request repeats the previous job")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL, no database")
    parser.add_argument("--database", default="cronhouse_bench_api", help="database to (re)create and drop")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="Redis server URL, no db number")
    parser.add_argument("--redis-db", type=int, default=15, help="Redis db number to use and flush (default 15)")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _procfile_web_options() -> list[str]:
    """The Procfile's gunicorn options after its --bind (worker class, workers, threads, timeouts)."""
    line = next(line for line in (BASE_DIR / "Procfile").read_text().splitlines() if line.startswith("web:"))
    words = line.split()
    bind = words.index("--bind")
    return words[bind + 2 :]


PROCFILE_WEB_OPTIONS = _procfile_web_options()


def serve(port: int, log_path: Path) -> subprocess.Popen:
    """The Procfile's web process, bound to loopback."""
    argv = [str(Path(sys.executable).with_name("gunicorn")), "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    argv += PROCFILE_WEB_OPTIONS
    log = log_path.open("wb")
    server = subprocess.Popen(argv, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{BASELINE_PATH}", timeout=1)
        except urllib.error.HTTPError:
            return server  # 405 for a GET: Django answers
        except OSError:
            time.sleep(0.2)
    stop(server)
    raise SystemExit("gunicorn did not start:\n" + log_path.read_text(errors="replace")[-2000:])


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wrk(url: str, script: str, seconds: int, connections: int, server_pid: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", handle.name, url]
    cpu = worker_cpu_seconds(server_pid)
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    cpu = worker_cpu_seconds(server_pid) - cpu
    os.unlink(handle.name)
    statuses: dict[int, int] = {}
    for code, n in re.findall(r"STATUS (\d+) (\d+)", out):
        statuses[int(code)] = statuses.get(int(code), 0) + int(n)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": requests,
        "p99_ms": int(re.search(r"P99_US (\d+)", out).group(1)) / 1000,
        "cpu_ms": cpu / max(requests, 1) * 1000,
        "statuses": statuses,
        "socket_errors": (re.search(r"Socket errors:.*", out) or [""])[0],
    }


def read_ids(path: str) -> tuple[list[int], list[int]]:
    lines = Path(path).read_text().split()
    return [int(x[1:]) for x in lines if x[0] == "q"], [int(x[1:]) for x in lines if x[0] == "s"]


def account(result: dict, ids_file: str, floor: int, messages: int) -> dict:
    """Match one API round's answers with the runs it wrote (ids above ``floor``)."""
    from jobs.models import JobRun

    queued_ids, skipped_ids = read_ids(ids_file)
    runs = {
        pk: (status, dispatched)
        for pk, status, dispatched in JobRun.objects.filter(pk__gt=floor).values_list("pk", "status", "dispatched_at")
    }
    api = set(JobRun.objects.filter(pk__gt=floor, triggered_by=JobRun.Trigger.API).values_list("pk", flat=True))
    answered = queued_ids + skipped_ids
    mismatched = [pk for pk in queued_ids if pk not in api or runs[pk][0] != JobRun.Status.QUEUED]
    mismatched += [pk for pk in skipped_ids if pk not in api or runs[pk][0] != JobRun.Status.SKIPPED]
    queued_runs = [pk for pk, (status, _) in runs.items() if status == JobRun.Status.QUEUED]
    statuses = result["statuses"]
    return {
        "accepted": statuses.get(202, 0),
        "skipped": statuses.get(409, 0),
        "other": {code: n for code, n in statuses.items() if code not in (202, 409)},
        "ids_match_counts": len(queued_ids) == statuses.get(202, 0) and len(skipped_ids) == statuses.get(409, 0),
        "duplicates": len(answered) - len(set(answered)),
        "mismatched": len(mismatched),
        "not_api": len(runs) - len(api),
        "unanswered": len(api) - len(set(answered)),
        "undispatched": sum(1 for pk in queued_runs if runs[pk][1] is None),
        "queued_runs": len(queued_runs),
        "messages": messages,
    }


def account_ok(check: dict, connections: int) -> bool:
    return (
        check["ids_match_counts"]
        and not check["other"]
        and not check["duplicates"]
        and not check["mismatched"]
        and not check["not_api"]
        and not check["undispatched"]
        and check["messages"] == check["queued_runs"]
        and 0 <= check["unanswered"] <= connections
    )


def settle() -> None:
    """Let the requests wrk left in flight finish before anything is counted."""
    time.sleep(1)


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    scratch = Path(tempfile.mkdtemp(prefix="cronhouse-bench-api-"))
    broker_url = f"{args.redis.rstrip('/')}/{args.redis_db}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.api_trigger_site",
        DATABASE_URL=f"{args.pg.rstrip('/')}/{args.database}",
        CELERY_BROKER_URL=broker_url,
        JOBS_SECRET_KEY=API_KEY,
        JOBS_API_RATE_LIMIT="100000000/m",
        CRONHOUSE_VAR_DIR=str(scratch / "var"),
        DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    os.chdir(BASE_DIR)

    import django
    import redis

    recreate_database(args.pg.rstrip("/"), args.database)
    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from jobs.models import Job, JobRun

    call_command("migrate", verbosity=0)
    # bulk_create writes no schedule rows: no beat runs here.
    total = args.jobs * (args.rounds + 1)
    Job.objects.bulk_create(
        (Job(name=f"bench-{i}", command="test_job", cron_expression="0 0 1 1 *") for i in range(total)), batch_size=5000
    )
    broker = redis.Redis.from_url(broker_url)
    broker.flushdb()
    connections.close_all()

    port = free_port()
    rounds, checks = [], []
    server = None
    try:
        server = serve(port, scratch / "gunicorn.log")
        base = f"http://127.0.0.1:{port}"

        def script(number: int, path: str, ids_file: str) -> str:
            fields = {
                "repeat": args.repeat_every if args.repeat_every > 0 else 2**31,
                "offset": number * args.jobs,
                "stride": args.jobs // 2,
                "jobs": args.jobs,
                "key": API_KEY,
            }
            return WRK_SCRIPT.substitute(fields, path=path, ids_file=ids_file)

        # Every gunicorn worker has connected to PostgreSQL and Redis before anything is timed;
        # the last slice of the pool is spent on this.
        for path in (BASELINE_PATH, API_PATH):
            wrk(base + path, script(args.rounds, path, str(scratch / "warm-up.txt")), 2, args.connections, server.pid)
        for number in range(args.rounds):
            baseline_script = script(number, BASELINE_PATH, str(scratch / f"baseline-{number}.txt"))
            baseline = wrk(base + BASELINE_PATH, baseline_script, args.seconds, args.connections, server.pid)

            settle()
            broker.delete(QUEUE)
            floor = JobRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            connections.close_all()
            ids_file = str(scratch / f"api-{number}.txt")
            api = wrk(base + API_PATH, script(number, API_PATH, ids_file), args.seconds, args.connections, server.pid)
            settle()
            checks.append(account(api, ids_file, floor, broker.llen(QUEUE)))
            connections.close_all()
            rounds.append((baseline, api))
    finally:
        if server is not None:
            stop(server)
        connections.close_all()
        broker.flushdb()
        drop_database(args.pg.rstrip("/"), args.database)
        shutil.rmtree(scratch, ignore_errors=True)

    def median(side: int, key: str) -> float:
        return statistics.median(pair[side][key] for pair in rounds)

    print(
        f"gunicorn config.wsgi {' '.join(PROCFILE_WEB_OPTIONS)} (the Procfile's) on 127.0.0.1; "
        f"wrk -t2 -c{args.connections} "
        f"-d{args.seconds}s; {args.rounds} alternating rounds, medians"
    )
    for number, (baseline, api) in enumerate(rounds, 1):
        print(
            f"  round {number}: send_task view {baseline['rps']:7.1f} req/s   API {api['rps']:7.1f} req/s   "
            f"ratio {api['rps'] / baseline['rps']:.2f}   baseline statuses {baseline['statuses']}"
            f"{'   ' + baseline['socket_errors'] if baseline['socket_errors'] else ''}"
            f"{'   API ' + api['socket_errors'] if api['socket_errors'] else ''}"
        )
    for label, side in (("send_task view (baseline)", 0), ("POST /api/jobs/run", 1)):
        print(
            f"  {label:<26}{median(side, 'rps'):8.1f} req/s   p99 {median(side, 'p99_ms'):7.1f} ms   "
            f"server CPU {median(side, 'cpu_ms'):5.2f} ms/request"
        )
    ratios = sorted(api["rps"] / baseline["rps"] for baseline, api in rounds)
    ratio = statistics.median(ratios)
    print(f"  ratio {ratio:.2f} (goal >= {GOAL}) {'OK' if ratio >= GOAL else 'MISSED'}")

    ok = True
    for number, check in enumerate(checks, 1):
        passed = account_ok(check, args.connections)
        ok = ok and passed
        print(
            f"  accounting round {number}: {check['accepted']} x 202 and {check['skipped']} x 409, each its own "
            f"API run (queued / skipped), {check['duplicates']} ids twice, {check['mismatched']} mismatched, "
            f"other statuses {check['other'] or 'none'}; {check['queued_runs']} queued runs, "
            f"{check['undispatched']} undispatched, {check['messages']} messages in Redis; "
            f"{check['unanswered']} runs answered after wrk stopped reading (<= {args.connections})"
            f" -> {'OK' if passed else 'MISMATCH'}"
        )

    return 0 if ok and ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
