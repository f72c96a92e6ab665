"""Helpers of the tests that run job commands (billing, accounts): a moment on a day, a command run
as the runner runs it, a worker killed mid-transaction, and the messages it queued."""

from __future__ import annotations

import io
import json
from contextlib import contextmanager
from datetime import date, datetime

from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.utils import timezone


def at(day: str, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime.combine(date.fromisoformat(day), datetime.min.time()).replace(hour=hour))


def run(command: str, *args: str) -> dict:
    """Run a job command as the runner would and return its summary (also checks the JSON line)."""
    out = io.StringIO()
    summary = call_command(command, *args, stdout=out)
    assert json.loads(out.getvalue().strip().splitlines()[-1]) == json.loads(json.dumps(summary, default=str))
    return summary


class WorkerKilled(Exception):
    pass


@contextmanager
def killed_at(statement: str, occurrence: int, *, table: str = ""):
    """The worker dies as it sends the ``occurrence``-th SQL statement that starts with
    ``statement`` (and names ``table``): whatever its transaction wrote so far must roll back."""
    seen = []

    def die(execute, sql, params, many, context):
        if sql.lstrip().startswith(statement) and table in sql:
            seen.append(sql)
            if len(seen) == occurrence:
                raise WorkerKilled(statement)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(die):
        yield


def queued(template: str | None = None) -> list:
    """Messages queued through the notifications app (read back for assertions only)."""
    Notification = apps.get_model("notifications", "Notification")
    rows = Notification.objects.order_by("id")
    if template:
        rows = rows.filter(template=template)
    return list(rows)


def drain() -> None:
    """process-notifications, as its job would run it: queued e-mails reach the outbox."""
    from notifications.email.mailer import notifications_process

    notifications_process(max_seconds=10)
