"""Builders for hand-made accounts data, and helpers to run jobs and read what they queued."""

from __future__ import annotations

import io
import json
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from accounts.models import Account, Catalog, Plan, Subscription

from .stripe_server import FakeStripe


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


@pytest.fixture
def outbox(settings):
    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    return mail.outbox


class Builder:
    """Small, explicit builders: every test shows the rows it relies on."""

    def __init__(self) -> None:
        self.count = 0

    def _n(self) -> int:
        self.count += 1
        return self.count

    def plan(self, code: str = "pro", price: str = "79.00", catalog: bool = True) -> Plan:
        return Plan.objects.get_or_create(
            code=code, defaults={"name": code.title(), "monthly_price": Decimal(price), "includes_catalog": catalog}
        )[0]

    def account(self) -> Account:
        n = self._n()
        return Account.objects.create(name=f"Account {n}", email=f"account{n}@example.com")

    def subscription(self, *, account: Account | None = None, plan: Plan | None = None, **fields) -> Subscription:
        fields.setdefault("started_at", at("2025-01-01"))
        return Subscription.objects.create(account=account or self.account(), plan=plan or self.plan(), **fields)

    def catalog(self, *, account: Account, plan: Plan, published: bool = True) -> Catalog:
        return Catalog.objects.create(
            account=account, name=f"Catalog {self._n()}", required_plan=plan, published=published
        )


@pytest.fixture
def build(db) -> Builder:
    return Builder()


@pytest.fixture
def stripe_api(settings):
    """A Stripe API on 127.0.0.1 (``stripe_server.FakeStripe``), and the key and base pointing at it."""
    fake = FakeStripe()
    settings.ACCOUNTS_STRIPE_API_KEY = "sk_test_local"
    settings.ACCOUNTS_STRIPE_API_BASE = fake.url
    settings.ACCOUNTS_STRIPE_MAX_RETRIES = 2
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True
    yield fake
    fake.stop()
