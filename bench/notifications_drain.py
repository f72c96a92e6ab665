"""Notification drain: 20,000 queued e-mails drained by two concurrent process-notifications drains
with a no-op e-mail backend, against a bare SKIP LOCKED claim loop on the same table in the same
run. Goal: the drain (claim + render subject/text/html + build the e-mail + hand it to the
backend + record ``sent``) keeps at least one third of the bare claim rate, with zero duplicates.

* bare: two processes each loop
  ``UPDATE notifications_notification SET status = 'processing', claimed_at = now()
  WHERE id IN (SELECT id ... WHERE status = 'queued' ... LIMIT 100 FOR UPDATE SKIP LOCKED)
  RETURNING id`` until it returns nothing;
* drain: two processes each call ``notifications.mailer.notifications_process`` (what
  ``manage.py process_notifications`` runs) until the queue is empty, with Django's dummy
  e-mail backend extended only to note each Message-ID, so duplicates can be counted.

The queue is filled once through ``notifications_enqueue_many``; before every phase it is reset
to "all queued" and vacuumed, so both sides work on the same rows. Both pairs of processes are
held at a start gate (an ACCESS EXCLUSIVE table lock) until both are blocked on it, so neither
figure includes Python start-up. Each figure is N / (gate opened -> last process done). The
phases alternate for ``--rounds`` rounds and the best of each side is compared, because a
shared 2-core machine swings either figure by 2x from one second to the next. The benchmark
owns a database (``cronhouse_bench_notif``, dropped and recreated).

    .venv/bin/python bench/notifications_drain.py [-n 20000] [--rounds 3] [--batch-size 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_TEMPLATES = Path(__file__).resolve().parent / "templates"
# An owner's "statement ready" e-mail shaped like the billing app's messages (subject, text and
# HTML with variables, a condition and a link); --template notifications/test_message renders the
# shipped test message instead, whose text is all {% trans %} / _() (Django gettext per message).
DEFAULT_TEMPLATE = "bench/statement_ready"
GOAL = 1 / 3
BARE_LIMIT = 100
BARE_CLAIM = """
UPDATE notifications_notification SET status = 'processing', claimed_at = now()
 WHERE id IN (SELECT id FROM notifications_notification
               WHERE status = 'queued' AND send_after <= now()
               ORDER BY send_after, id
               LIMIT %s
                 FOR UPDATE SKIP LOCKED)
RETURNING id
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--messages", type=int, default=20_000, help="messages to drain (default 20000)")
    parser.add_argument("--template", default=DEFAULT_TEMPLATE, help=f"message type (default {DEFAULT_TEMPLATE})")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/drain rounds (default 3)")
    parser.add_argument("--batch-size", type=int, default=None, help="drain claim size (default: the setting, 200)")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL, no database")
    parser.add_argument("--database", default="cronhouse_bench_notif", help="database to (re)create and drop")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--no-render",
        action="store_true",
        help="diagnostic: build each e-mail from fixed strings instead of rendering its templates (the queue alone)",
    )
    parser.add_argument("--worker", choices=["bare", "drain"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args()


# --- the worker processes ----------------------------------------------------------------

try:
    from django.core.mail.backends.dummy import EmailBackend as _DummyBackend
except ImportError:  # pragma: no cover  (Django is always installed in .venv)
    _DummyBackend = object


class RecordingDummyBackend(_DummyBackend):
    """Django's no-op backend, plus one list append per message so duplicates can be counted."""

    received: list[str] = []

    def send_messages(self, email_messages):
        count = 0
        for message in email_messages:
            RecordingDummyBackend.received.append(message.extra_headers["Message-ID"])
            count += 1
        return count


def add_bench_templates() -> None:
    """The e-mail engine reads bench/templates/ too (the benchmark's message type is not shipped)."""
    from django.conf import settings
    from django.test.utils import override_settings

    engines = [
        {**engine, "DIRS": [*engine["DIRS"], BENCH_TEMPLATES]} if engine.get("NAME") == "emails" else engine
        for engine in settings.TEMPLATES
    ]
    override_settings(TEMPLATES=engines).enable()


def worker(mode: str, out: str, batch_size: int | None, no_render: bool = False) -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    add_bench_templates()
    from django.conf import settings
    from django.db import connection

    result: dict = {"mode": mode, "pid": os.getpid()}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    cpu_before = time.process_time(), backend_cpu(backend)
    if mode == "bare":
        claimed = 0
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM notifications_notification LIMIT 0 FOR UPDATE")  # the gate
            while True:
                cursor.execute(BARE_CLAIM, [BARE_LIMIT])
                rows = cursor.fetchall()
                if not rows:
                    break
                claimed += len(rows)
        result.update(count=claimed)
    else:
        import bench.notifications_drain as me  # the class as imported by Django's backend loader

        settings.EMAIL_BACKEND = "bench.notifications_drain.RecordingDummyBackend"
        from notifications import rendering
        from notifications.mailer import notifications_process

        if no_render:
            rendering._render = lambda *args, **kwargs: ("subject", "text", None)

        drained = notifications_process(batch_size=batch_size, max_seconds=float("inf"))
        result.update(count=drained.sent, failed=drained.failed, batches=drained.batches)
        result["message_ids"] = me.RecordingDummyBackend.received
    result["finished"] = time.time()
    result["client_cpu"] = time.process_time() - cpu_before[0]
    result["server_cpu"] = backend_cpu(backend) - cpu_before[1]
    Path(out).write_text(json.dumps(result))


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) a PostgreSQL backend on this machine has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the parent --------------------------------------------------------------------------


def recreate_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_context(i: int) -> dict:
    return {
        "owner_name": f"Owner {i}",
        "period_label": "November 2026",
        "property": f"Maple Court {i % 40}",
        "collected": f"{4000 + i % 900}.00",
        "expenses": "312.40",
        "net": f"{3687 + i % 900}.60",
        "payout_date": "2026-12-02",
        "statement_id": i,
        "label": f"Statement {i} is ready",
    }


def fill_queue(n: int, template: str) -> float:
    """Enqueue ``n`` messages through the public API; returns the seconds it took."""
    from django.db import connection

    from notifications.services import notifications_enqueue_many

    started = time.monotonic()
    created = notifications_enqueue_many(
        messages=(
            {
                "recipient": f"tenant{i}@example.com",
                "template": template,
                "context": bench_context(i),
                "dedupe_key": f"bench:{i}",
            }
            for i in range(n)
        )
    )
    elapsed = time.monotonic() - started
    assert created == n, created
    connection.close()
    return elapsed


def reset_queue() -> None:
    """Every message back to queued and due, then VACUUM ANALYZE: the same table for each phase."""
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "UPDATE notifications_notification SET status = 'queued', attempts = 0, claimed_at = NULL, "
            "claim_token = NULL, sent_at = NULL, last_error = '', send_after = now() - interval '1 minute'"
        )
        conn.execute("VACUUM ANALYZE notifications_notification")


def run_phase(
    mode: str, n: int, batch_size: int | None, scratch: Path, no_render: bool = False
) -> tuple[float, list[dict]]:
    """Two workers behind a start gate; returns (rows per second, the workers' results)."""
    import psycopg

    url = os.environ["DATABASE_URL"]
    gate = psycopg.connect(url)
    gate.execute("LOCK TABLE notifications_notification IN ACCESS EXCLUSIVE MODE")
    outs = [scratch / f"{mode}-{i}.json" for i in range(2)]
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", mode]
    if batch_size:
        argv += ["--batch-size", str(batch_size)]
    if no_render:
        argv.append("--no-render")
    env = dict(os.environ, LOG_LEVEL="WARNING")
    procs = [subprocess.Popen([*argv, "--out", str(out)], cwd=BASE_DIR, env=env) for out in outs]
    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as watcher:
        deadline = time.monotonic() + 60
        while True:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", [dbname]
            ).fetchone()[0]
            if waiting >= 2:
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"{mode}: workers never reached the start gate")
            time.sleep(0.02)
    opened = time.time()
    gate.rollback()
    gate.close()
    for proc in procs:
        if proc.wait(timeout=300) != 0:
            raise SystemExit(f"{mode} worker failed with exit code {proc.returncode}")
    results = [json.loads(out.read_text()) for out in outs]
    total = sum(r["count"] for r in results)
    if total != n:
        raise SystemExit(f"{mode}: {total} rows handled, expected {n}")
    return n / (max(r["finished"] for r in results) - opened), results


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args.worker, args.out, args.batch_size, args.no_render)
        return
    url = f"{args.pg}/{args.database}"
    recreate_database(args.pg, args.database)
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="config.settings",
        CRONHOUSE_VAR_DIR=tempfile.mkdtemp(prefix="chbench-notif-"),
        LOG_LEVEL="WARNING",
        CELERY_BROKER_URL="memory://",
        # As in production (and the other benchmarks): DEBUG's query log would format and keep
        # every statement's SQL, on both sides.
        DEBUG="false",
    )
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, check=True)
        sys.path.insert(0, str(BASE_DIR))
        import django

        django.setup()
        add_bench_templates()
        from django.conf import settings

        from notifications.models import Notification

        scratch = Path(os.environ["CRONHOUSE_VAR_DIR"])
        enqueue_seconds = fill_queue(args.messages, args.template)
        bare_rates, drain_rates, duplicates, distinct, once = [], [], 0, set(), []
        cpu = {"bare": [], "drain": []}  # (client, server) CPU microseconds per message, per round

        def cpu_per_message(mode, results):
            client = sum(r["client_cpu"] for r in results) / args.messages * 1e6
            server = sum(r["server_cpu"] for r in results) / args.messages * 1e6
            cpu[mode].append((client, server))

        for _ in range(args.rounds):
            reset_queue()
            rate, results = run_phase("bare", args.messages, None, scratch)
            bare_rates.append(rate)
            cpu_per_message("bare", results)
            reset_queue()
            rate, results = run_phase("drain", args.messages, args.batch_size, scratch, args.no_render)
            drain_rates.append(rate)
            cpu_per_message("drain", results)
            ids = Counter(i for r in results for i in r["message_ids"])
            duplicates += sum(count - 1 for count in ids.values() if count > 1)
            distinct.add(len(ids))
            once.append(Notification.objects.filter(status="sent", attempts=1).count())

        bare_rate, drain_rate = max(bare_rates), max(drain_rates)
        ratio = drain_rate / bare_rate
        batch = args.batch_size or settings.NOTIFICATIONS_BATCH_SIZE

        def rates(values):
            return ", ".join(f"{v:,.0f}" for v in values)

        rendering = "NOT RENDERED (--no-render)" if args.no_render else f"template {args.template}"
        print(f"messages                        {args.messages} x {args.rounds} rounds, {rendering}")
        print(f"enqueue (notifications_enqueue_many, 1 process)  {args.messages / enqueue_seconds:,.0f} msg/s")
        print(
            f"bare SKIP LOCKED claim, 2 procs, LIMIT {BARE_LIMIT}  best {bare_rate:,.0f} rows/s  ({rates(bare_rates)})"
        )
        print(
            f"drain (render+send+record), 2 procs, batch {batch}  best {drain_rate:,.0f} msg/s  ({rates(drain_rates)})"
        )
        print(
            "   last round, per process: " + ", ".join(f"{r['count']} sent in {r['batches']} batches" for r in results)
        )
        print(
            f"ratio drain / bare (best/best)  {ratio:.2f}  (goal >= {GOAL:.2f}); "
            f"round by round: {', '.join(f'{d / b:.2f}' for b, d in zip(bare_rates, drain_rates, strict=True))}"
        )
        for mode in ("bare", "drain"):
            client, server = min(cpu[mode], key=sum)
            print(
                f"CPU per message, {mode:5}  {client + server:5.0f} us (client {client:.0f} + PostgreSQL {server:.0f})"
            )
        cpu_ratio = min(map(sum, cpu["bare"])) / min(map(sum, cpu["drain"]))
        print(f"CPU-cost ratio bare / drain     {cpu_ratio:.2f}  (the load-independent form of the ratio above)")
        print(f"duplicates                      {duplicates}  (distinct Message-IDs per round: {sorted(distinct)})")
        print(f"sent on the first attempt       {once} of {args.messages} per round")
        ok = ratio >= GOAL and duplicates == 0 and distinct == {args.messages} and set(once) == {args.messages}
        print("RESULT", "PASS" if ok else "FAIL")
        if not ok:
            raise SystemExit(1)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database(args.pg, args.database)


if __name__ == "__main__":
    main()
