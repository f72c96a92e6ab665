"""Load POST /api/jobs/run with wrk on loopback and compare with a trivial Django view.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres CELERY_BROKER_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/api_trigger.py [--jobs 20000] [--seconds 10] [--connections 16] \\
        [--workers 3] [--threads 1]

1. Creates a fresh database ``cronhouse_bench_api`` (PostgreSQL), migrates it and bulk-creates
   ``--jobs`` jobs (no worker runs, so a job stays queued once triggered).
2. Serves Cronhouse with gunicorn as the Procfile does (3 sync workers; ``--threads N`` gives
   gthread workers) on 127.0.0.1, with the trivial view ``/bench/trivial`` mounted beside the
   real URLs (same process, same middleware, same configuration for both). Not gthread by
   default: its workers keep wrk's connections alive, and which worker accepts them is a
   lottery (seen with ``ss``: all 16 on one worker in one run, 13/3 or 9/7 in others), which
   swung the trivial figure between ~1,500 and ~3,800 req/s and the ratio with it.
3. Runs wrk against the trivial view, then against two floor views (one ``SELECT 1`` round
   trip; one durable one-row INSERT: the least a 202 promising a committed run can do), then
   against the API: every request names the next job
   in turn (alternating over the pool), so a request starts a run unless its job already has one.
4. Accounts for every answer: 202s must equal the API runs left queued, 409s the skipped runs
   recorded; anything else is reported. Prints req/s, p99 latency and the ratio.
Needs Debian's ``wrk`` (apt-get install wrk). Stays on loopback and stops by itself (~65 s).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
BENCH_DB = "cronhouse_bench_api"
FLOOR_TABLE = "bench_floor"  # as in bench/api_trigger_urls.py
API_KEY = "bench-api-key-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d"

WRK_SCRIPT = """
local counter = 0
local jobs = %(jobs)d
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  counter = id * %(stride)d
  statuses = {}
  ids = {}
end
request = function()
  counter = counter + 1
  local body = '{"job": "bench-' .. (counter %% jobs) .. '"}'
  return wrk.format("POST", "/api/jobs/run",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(key)s"}, body)
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local queued = body:match('"run_id": (%%d+)')
  local skipped = body:match('"skipped_run_id": (%%d+)')
  if status == 202 and queued then table.insert(ids, "q" .. queued) end
  if status == 409 and skipped then table.insert(ids, "s" .. skipped) end
end
done = function(summary, latency, requests)
  local totals = {}
  local file = io.open("%(ids_file)s", "w")
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do totals[code] = (totals[code] or 0) + n end
    for _, one in ipairs(thread:get("ids")) do file:write(one, "\\n") end
  end
  file:close()
  local parts = {}
  for code, n in pairs(totals) do table.insert(parts, '"' .. code .. '": ' .. n) end
  io.write("STATUSES {" .. table.concat(parts, ", ") .. "}\\n")
  io.write(string.format("P99_US %%d\\n", latency:percentile(99)))
end
"""

TRIVIAL_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format("P99_US %d\\n", latency:percentile(99)))
end
"""
# The floor views of bench/api_trigger_urls.py: (label, path, method).
FLOOR_VIEWS = [
    ("floor: one SELECT 1 round trip", "/bench/round-trip", "GET"),
    ("floor: one durable INSERT", "/bench/durable-insert", "POST"),
]


def database_url(name: str) -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    return base.rsplit("/", 1)[0] + "/" + name


def psycopg_connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def psql(sql: str) -> None:
    with psycopg_connect(database_url("postgres")) as conn:
        conn.execute(sql)


def prepare(env: dict, jobs: int) -> None:
    psql(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{BENCH_DB}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=BASE, env=env, check=True)
    code = (
        "from jobs.models import Job; "
        f"Job.objects.bulk_create(Job(name=f'bench-{{i}}', command='test_job', cron_expression='0 0 1 1 *') "
        f"for i in range({jobs}))"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=BASE, env=env, check=True)
    with psycopg_connect(database_url(BENCH_DB)) as conn:
        conn.execute(f"CREATE TABLE {FLOOR_TABLE} (id bigserial PRIMARY KEY, at timestamptz NOT NULL)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(env: dict, port: int, workers: int, threads: int) -> subprocess.Popen:
    argv = [
        str(Path(sys.executable).with_name("gunicorn")),
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread" if threads > 1 else "sync",
        "--threads",
        str(threads),
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(argv, cwd=BASE, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/trivial", timeout=1).read()
            return server
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def wrk(url: str, script: str, seconds: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", handle.name, url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    os.unlink(handle.name)
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p99_ms": int(re.search(r"P99_US (\d+)", out).group(1)) / 1000,
        "errors": re.search(r"Socket errors:.*|Non-2xx.*", out).group(0) if "errors" in out else "",
    }
    if match := re.search(r"STATUSES (\{.*\})", out):
        result["statuses"] = {int(k): v for k, v in json.loads(match.group(1)).items()}
    return result


def account(env: dict, ids_file: str) -> dict:
    """Each 202's run id must be a queued API run and each 409's skipped id a skipped API run,
    every id once. Runs beyond those were answered after wrk stopped reading (in flight)."""
    code = f"""
import json
from jobs.models import JobRun
lines = open({ids_file!r}).read().split()
queued = [int(x[1:]) for x in lines if x[0] == "q"]
skipped = [int(x[1:]) for x in lines if x[0] == "s"]
runs = dict(JobRun.objects.filter(triggered_by="api").values_list("id", "status"))
bad = [i for i in queued if runs.get(i) != "queued"] + [i for i in skipped if runs.get(i) != "skipped"]
print(json.dumps({{
    "queued_ids": len(queued), "skipped_ids": len(skipped), "unique": len(set(lines)) == len(lines),
    "mismatched": len(bad), "api_runs": len(runs), "in_flight": len(runs) - len(lines),
}}))
"""
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=BASE, env=env, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20000, help="job pool the requests alternate over")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (the Procfile's 3)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (1: sync workers)")
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the floor views (a view doing one PostgreSQL round trip / one durable INSERT)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/12")
    env = dict(
        os.environ,
        DATABASE_URL=database_url(BENCH_DB),
        CELERY_BROKER_URL=broker,
        DJANGO_SETTINGS_MODULE="bench.api_trigger_site",
        JOBS_SECRET_KEY=API_KEY,
        JOBS_API_RATE_LIMIT="100000000/m",
        LOG_LEVEL="WARNING",
        DEBUG="false",
        CRONHOUSE_VAR_DIR=tempfile.mkdtemp(prefix="cronhouse-bench-api-"),
    )
    import redis

    redis.Redis.from_url(broker).flushdb()
    prepare(env, args.jobs)
    ids_file = str(Path(env["CRONHOUSE_VAR_DIR"]) / "answered-ids.txt")
    port = free_port()
    server = serve(env, port, args.workers, args.threads)
    try:
        base = f"http://127.0.0.1:{port}"
        trivial = wrk(f"{base}/bench/trivial", TRIVIAL_SCRIPT, args.seconds, args.connections)
        floors = []
        if args.floor:
            for label, view, method in FLOOR_VIEWS:
                script = f'wrk.method = "{method}"\n' + TRIVIAL_SCRIPT
                floors.append((label, wrk(f"{base}{view}", script, args.seconds, args.connections)))
        script = WRK_SCRIPT % {"jobs": args.jobs, "stride": args.jobs // 2, "key": API_KEY, "ids_file": ids_file}
        api = wrk(f"{base}/api/jobs/run", script, args.seconds, args.connections)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    runs = account(env, ids_file)
    redis.Redis.from_url(broker).flushdb()
    statuses = api.get("statuses", {})
    accepted, skipped = statuses.get(202, 0), statuses.get(409, 0)
    other = {code: n for code, n in statuses.items() if code not in (202, 409)}
    ok = (
        runs["queued_ids"] == accepted
        and runs["skipped_ids"] == skipped
        and runs["unique"]
        and not runs["mismatched"]
        and not other
        and 0 <= runs["in_flight"] <= args.connections
    )
    kind = f"{args.workers} sync workers"
    if args.threads > 1:
        kind = f"{args.workers} gthread workers x {args.threads} threads"
    print(f"gunicorn              {kind}, wrk -t2 -c{args.connections} -d{args.seconds}s")
    print(f"trivial Django view               {trivial['rps']:9.1f} req/s   p99 {trivial['p99_ms']:7.1f} ms")
    print(
        f"POST /api/jobs/run                {api['rps']:9.1f} req/s   p99 {api['p99_ms']:7.1f} ms   "
        f"({args.jobs} jobs alternating)"
    )
    print(f"ratio                             {api['rps'] / trivial['rps']:9.2f}   (goal >= 0.50)")
    for label, floor in floors:
        print(
            f"{label:<34}{floor['rps']:9.1f} req/s   p99 {floor['p99_ms']:7.1f} ms   "
            f"ratio {floor['rps'] / trivial['rps']:.2f} (a view doing only this, same server)"
        )
    print(
        f"accounting            {accepted + skipped} answered: {accepted} x 202, each its own queued run; "
        f"{skipped} x 409, each its own skipped run; mismatched {runs['mismatched']}; other statuses "
        f"{other or 'none'}; {runs['in_flight']} more runs answered after wrk stopped reading "
        f"(<= {args.connections} connections in flight) -> {'OK' if ok else 'MISMATCH'}"
    )
    psql(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
