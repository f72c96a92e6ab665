"""Notification drain against a bare SMTP loop, both sending to one real local SMTP server.

* bare: one loop that, per batch, claims due rows with
  ``SELECT id ... ORDER BY send_after, id LIMIT n FOR UPDATE SKIP LOCKED``, sends each row's
  PRE-RENDERED message (its bytes built before the clock starts) over ONE ``smtplib`` connection,
  marks the batch ``sent`` and commits;
* drain: ``notifications.email.mailer.notifications_process`` (what ``manage.py process_notifications``
  runs) until the queue is empty, with Django's SMTP backend (``EMAIL_URL``) pointed at the same
  server: claim, render subject/text/html in the recipient's language, build the e-mail, send,
  record ``sent``.

The SMTP server is aiosmtpd in its own process (``bench/smtp_sink.py``), writing each received
Message-ID to a file: every message must arrive exactly once in each phase. The queue is filled
once through ``notifications_enqueue_many`` and reset to "all due" before each phase. Goal: the
drain sends at least half the bare loop's messages per second.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cronhouse_bench_notif \\
        .venv/bin/python bench/notifications_drain.py --messages 5000

The database named in DATABASE_URL is dropped, created, and dropped again at the end (``--keep``
keeps it).
"""

from __future__ import annotations

import argparse
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_TEMPLATES = Path(__file__).resolve().parent / "templates"
# An owner's "statement ready" e-mail shaped like the billing app's messages (subject, text and
# HTML with variables, a condition and a link).
DEFAULT_TEMPLATE = "bench/statement_ready"
GOAL = 0.5
BARE_CLAIM = """
SELECT id FROM notifications_notification
 WHERE status = 'queued' AND send_after <= now()
 ORDER BY send_after, id
 LIMIT %s
   FOR UPDATE SKIP LOCKED
"""
BARE_SENT = "UPDATE notifications_notification SET status = 'sent', sent_at = now() WHERE id = ANY(%s)"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--messages", type=int, default=5000, help="messages per phase (default 5000)")
    parser.add_argument("--template", default=DEFAULT_TEMPLATE, help=f"message type (default {DEFAULT_TEMPLATE})")
    parser.add_argument("--rounds", type=int, default=1, help="bare/drain rounds (default 1)")
    parser.add_argument("--batch-size", type=int, default=200, help="claim size of both sides (default 200)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args()


def recreate_database(url: str, *, drop_only: bool = False) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpSink:
    """bench/smtp_sink.py in a subprocess; ``received()`` reads the Message-IDs it has logged."""

    def __init__(self, port: int, out: Path) -> None:
        self.out = out
        script = Path(__file__).resolve().parent / "smtp_sink.py"
        self.proc = subprocess.Popen(
            [sys.executable, str(script), "--port", str(port), "--out", str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("the SMTP sink did not start")

    def received(self) -> list[str]:
        return self.out.read_text().splitlines() if self.out.exists() else []

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def setup_django(port: int) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        CRONHOUSE_VAR_DIR=tempfile.mkdtemp(prefix="chbench-notif-"),
        LOG_LEVEL="WARNING",
        CELERY_BROKER_URL="memory://",
        EMAIL_URL=f"smtp://127.0.0.1:{port}",
        # As in production: DEBUG's query log would keep every statement's SQL.
        DEBUG="false",
    )
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.conf import settings
    from django.test.utils import override_settings

    # The e-mail engine reads bench/templates/ too (the benchmark's message type is not shipped).
    engines = [
        {**engine, "DIRS": [*engine["DIRS"], BENCH_TEMPLATES]} if engine.get("NAME") == "emails" else engine
        for engine in settings.TEMPLATES
    ]
    override_settings(TEMPLATES=engines).enable()


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
    }


def fill_queue(n: int, template: str) -> None:
    from notifications.services import notifications_enqueue_many

    messages = (
        {"recipient": f"owner{i}@example.com", "template": template, "context": bench_context(i)} for i in range(n)
    )
    assert notifications_enqueue_many(messages=messages) == n


def reset_queue() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from notifications.models import Notification

    Notification.objects.update(
        status=Notification.Status.QUEUED,
        attempts=0,
        claimed_at=None,
        claim_token=None,
        sent_at=None,
        last_error="",
        send_after=timezone.now() - timedelta(minutes=1),
    )


def prerender() -> dict[int, tuple[str, list[str], bytes]]:
    """Each queued row's message as the bare loop sends it: (from, recipients, bytes)."""
    from notifications.email.rendering import message_build
    from notifications.models import Notification

    messages = {}
    for notification in Notification.objects.all():
        email = message_build(notification)
        messages[notification.pk] = (email.from_email, email.recipients(), email.message().as_bytes(linesep="\r\n"))
    return messages


def run_bare(port: int, messages: dict, batch_size: int) -> int:
    from django.db import connection, transaction

    sent = 0
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(BARE_CLAIM, [batch_size])
                ids = [row[0] for row in cursor.fetchall()]
                for pk in ids:
                    smtp.sendmail(*messages[pk])
                if ids:
                    cursor.execute(BARE_SENT, [ids])
            if not ids:
                return sent
            sent += len(ids)


def run_drain(batch_size: int) -> int:
    from notifications.email.mailer import notifications_process

    result = notifications_process(batch_size=batch_size, max_seconds=float("inf"))
    if result.failed:
        raise SystemExit(f"drain: {result.failed} messages failed: {result.errors[:3]}")
    return result.sent


def timed_phase(name: str, sink: SmtpSink, expected: set[str], run) -> tuple[float, int, float]:
    """Run one phase; (messages per second, duplicates, this process's CPU microseconds per message).
    Exits unless each message arrived."""
    reset_queue()
    before = len(sink.received())
    started, cpu = time.perf_counter(), time.process_time()
    sent = run()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    counts = Counter(sink.received()[before:])
    duplicates = sum(c - 1 for c in counts.values())
    if sent != len(expected) or set(counts) != expected:
        raise SystemExit(f"{name}: sent {sent}, received {len(counts)} distinct of {len(expected)} expected")
    return sent / elapsed, duplicates, cpu / sent * 1e6


def main() -> None:
    args = parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/<a database this benchmark may drop>")
    recreate_database(url)
    port = free_port()
    sink = SmtpSink(port, Path(tempfile.mkdtemp(prefix="chbench-smtp-")) / "received.txt")
    try:
        setup_django(port)
        from django.conf import settings
        from django.core.management import call_command

        from notifications.models import Notification

        call_command("migrate", verbosity=0)
        fill_queue(args.messages, args.template)
        domain = settings.NOTIFICATIONS_MESSAGE_ID_DOMAIN
        expected = {f"<{uid}@{domain}>" for uid in Notification.objects.values_list("uuid", flat=True)}
        messages = prerender()
        results = []
        for _ in range(args.rounds):
            bare = timed_phase("bare", sink, expected, lambda: run_bare(port, messages, args.batch_size))
            drain = timed_phase("drain", sink, expected, lambda: run_drain(args.batch_size))
            results.append((bare, drain))
        print(f"messages        {args.messages} per phase, template {args.template}, batch {args.batch_size}")
        ok = True
        for number, ((bare_rate, bare_dups, bare_cpu), (drain_rate, drain_dups, drain_cpu)) in enumerate(results, 1):
            ratio = drain_rate / bare_rate
            ok = ok and ratio >= GOAL and bare_dups == drain_dups == 0
            print(
                f"round {number}: bare (SKIP LOCKED + pre-rendered, 1 SMTP connection) {bare_rate:,.0f} msg/s; "
                f"drain {drain_rate:,.0f} msg/s; ratio {ratio:.2f} (goal >= {GOAL}); "
                f"duplicates bare {bare_dups}, drain {drain_dups}; "
                f"client CPU per message bare {bare_cpu:.0f} us, drain {drain_cpu:.0f} us"
            )
        print("each message received exactly once per phase:", "yes" if ok else "see above")
        print("RESULT", "PASS" if ok else "FAIL")
        if not ok:
            raise SystemExit(1)
    finally:
        sink.stop()
        if not args.keep:
            from django.db import connections

            connections.close_all()
            recreate_database(url, drop_only=True)


if __name__ == "__main__":
    main()
