"""Two real process-notifications processes drain one PostgreSQL queue at once: each message once."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from notifications.models import Notification
from notifications.services import notifications_enqueue_many
from tests.process_group import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.processes, pytest.mark.django_db(transaction=True)]

MESSAGES = 2000
MESSAGE_ID = re.compile(r"^Message-ID: <([0-9a-f\-]{36})@", re.MULTILINE)


def received(folder: Path) -> list[str]:
    """The Message-IDs in everything Django's file backend wrote into ``folder``."""
    return [uid for path in folder.glob("*.log") for uid in MESSAGE_ID.findall(path.read_text())]


def waiting_on_lock(dbname: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", [dbname]
        )
        return cursor.fetchone()[0]


def test_it_sends_every_message_exactly_once_with_two_drains_at_once(processes, tmp_path):
    notifications_enqueue_many(
        messages=[
            {"recipient": f"tenant{i}@example.com", "template": "notifications/test_message", "context": {"i": i}}
            for i in range(MESSAGES)
        ]
    )
    queued = {str(u) for u in Notification.objects.values_list("uuid", flat=True)}
    assert len(queued) == MESSAGES

    # A start gate: hold the table lock until both drains are blocked on it, so they really
    # start claiming at the same moment instead of one finishing before the other has booted.
    db = connection.settings_dict
    gate = psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres", dbname=db["NAME"]
    )
    folders = {name: tmp_path / f"mail-{name}" for name in ("drain-a", "drain-b")}
    try:
        gate.execute("LOCK TABLE notifications_notification IN ACCESS EXCLUSIVE MODE")
        procs = {}
        for name, folder in folders.items():
            folder.mkdir()
            procs[name] = processes.manage(
                name,
                "process_notifications",
                "--until-empty",
                "--batch-size",
                "25",
                EMAIL_URL=f"filemail:///{folder}",
            )
        wait_for(lambda: waiting_on_lock(db["NAME"]) >= 2, timeout=60, message="both drains blocked on the gate")
    finally:
        gate.rollback()  # open the gate
        gate.close()

    started = time.monotonic()
    for proc in procs.values():
        assert proc.wait(timeout=120) == 0, processes.log_tails()
    elapsed = time.monotonic() - started

    per_drain = {name: received(folder) for name, folder in folders.items()}
    everything = Counter(uid for uids in per_drain.values() for uid in uids)
    duplicates = {uid: n for uid, n in everything.items() if n > 1}
    assert duplicates == {}, f"{len(duplicates)} messages sent more than once"
    assert set(everything) == queued, f"{len(queued - set(everything))} messages never sent"
    assert all(per_drain.values()), f"one drain sent nothing: { {k: len(v) for k, v in per_drain.items()} }"
    assert Notification.objects.filter(status=Notification.Status.SENT, attempts=1).count() == MESSAGES
    print(f"drained {MESSAGES} in {elapsed:.2f}s: " + ", ".join(f"{k}={len(v)}" for k, v in per_drain.items()))
