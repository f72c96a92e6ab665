from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import BillingNotice, Lease
from billing.services.notices import overdue_notices_send
from billing.services.payments import payment_record
from tests.job_commands import at, queued, run

pytestmark = pytest.mark.django_db


def charge(month: str = "2025-02-01") -> None:
    run("generate_charges", "--as-of", month)


def test_it_reminds_tenants_without_autopay_of_rent_due_in_3_days_once(build):
    due_soon = build.lease(due_day=5, rent="1100.00")
    build.lease(due_day=5, autopay=True)
    paid = build.lease(due_day=5)
    build.lease(due_day=20)
    charge()
    payment_record(lease=paid, amount=Decimal("1200.00"), received_on=date(2025, 2, 1))

    first = run("rent_reminders", "--as-of", "2025-02-02T15:00:00")
    second = run("rent_reminders", "--as-of", "2025-02-03T15:00:00")

    assert (first["notices"], first["messages_queued"]) == (1, 1)
    assert (second["notices"], second["messages_queued"]) == (0, 0)
    [message] = queued("billing/rent_reminder")
    assert message.recipient == due_soon.tenant.email
    assert message.dedupe_key.startswith("rent-reminder:")
    assert message.context["outstanding"] == "1100.00"
    assert message.context["due_date"] == "2025-02-05"
    assert message.context["days_until_due"] == 3


def test_it_escalates_overdue_notices_each_tier_once(build):
    lease = build.lease(due_day=1, rent="1000.00")
    charge()
    payment_record(lease=lease, amount=Decimal("400.00"), received_on=date(2025, 2, 1))

    days = {}
    for day in ["2025-02-01", "2025-02-02", "2025-02-03", "2025-02-06", "2025-02-06", "2025-02-16", "2025-03-03"]:
        days.setdefault(day, []).append(run("overdue_notices", "--as-of", f"{day}T16:00:00")["notices"])

    assert days == {
        "2025-02-01": [0],  # due today: not overdue
        "2025-02-02": [1],  # tier 1
        "2025-02-03": [0],
        "2025-02-06": [1, 0],  # tier 5, once
        "2025-02-16": [1],  # tier 15
        "2025-03-03": [1],  # tier 30 (and the March charge is not due yet)
    }
    tiers = [m.context["tier"] for m in queued("billing/overdue_notice")]
    assert tiers == [1, 5, 15, 30]
    assert {m.context["outstanding"] for m in queued("billing/overdue_notice")} == {"600.00"}


def test_it_sends_only_the_highest_tier_reached_when_first_seen_late(build):
    build.lease(due_day=1)
    charge()
    summary = run("overdue_notices", "--as-of", "2025-02-21")
    assert summary["by_tier"] == {"1": 0, "5": 0, "15": 1, "30": 0}
    assert run("overdue_notices", "--as-of", "2025-02-22")["notices"] == 0
    assert list(BillingNotice.objects.values_list("tier", flat=True)) == [15]


def test_it_sends_no_overdue_notice_for_a_paid_charge(build):
    lease = build.lease(due_day=1, rent="900.00")
    charge()
    payment_record(lease=lease, amount=Decimal("900.00"), received_on=date(2025, 2, 3))
    assert run("overdue_notices", "--as-of", "2025-02-10")["notices"] == 0


def test_it_writes_nothing_on_a_dry_run(build):
    build.lease(due_day=1)
    charge()
    summary = run("overdue_notices", "--as-of", "2025-02-10", "--dry-run")
    assert summary["notices"] == 1
    assert BillingNotice.objects.count() == 0
    assert queued() == []


def test_it_alerts_tenant_and_owner_before_a_lease_ends_each_tier_once(build):
    lease = build.lease(start="2024-05-03", end="2025-05-02")
    first = run("lease_expiration", "--as-of", "2025-02-01T07:00:00")  # 90 days before
    again = run("lease_expiration", "--as-of", "2025-02-02T07:00:00")
    late = run("lease_expiration", "--as-of", "2025-04-25T07:00:00")  # 7 days: skips 60/30/14
    last = run("lease_expiration", "--as-of", "2025-04-30T07:00:00")

    assert [first["notices"], again["notices"], late["notices"], last["notices"]] == [1, 0, 1, 0]
    assert first["messages_queued"] == 2
    recipients = sorted(
        m.recipient for m in queued("billing/lease_expiry_tenant") + queued("billing/lease_expiry_owner")
    )
    owner_email = lease.unit.property.owner.email
    assert recipients == sorted([lease.tenant.email, lease.tenant.email, owner_email, owner_email])
    assert sorted(BillingNotice.objects.values_list("tier", flat=True)) == [7, 90]
    assert {m.context["days_left"] for m in queued("billing/lease_expiry_tenant")} == {90, 7}


def test_it_tells_autopay_tenants_what_will_be_charged_and_reminds_others_to_enroll_monthly(build):
    autopay = build.lease(due_day=5, autopay=True, rent="1500.00", start="2025-02-01")
    manual = build.lease(due_day=5)
    charge()

    feb2 = run("autopay_reminders", "--as-of", "2025-02-02T14:00:00")
    feb3 = run("autopay_reminders", "--as-of", "2025-02-03T14:00:00")
    mar1 = run("autopay_reminders", "--as-of", "2025-03-01T14:00:00")
    mar2 = run("autopay_reminders", "--as-of", "2025-03-02T14:00:00")

    assert (feb2["precharge_notices"], feb2["enrollment_reminders"]) == (1, 1)
    assert (feb3["precharge_notices"], feb3["enrollment_reminders"]) == (0, 0)
    assert (mar1["precharge_notices"], mar1["enrollment_reminders"]) == (0, 1)
    assert (mar2["precharge_notices"], mar2["enrollment_reminders"]) == (1, 0)  # March 5 is 3 days away
    [feb, mar] = queued("billing/autopay_precharge")
    assert feb.recipient == autopay.tenant.email
    assert (feb.context["amount"], feb.context["charge_date"]) == ("1500.00", "2025-02-05")
    assert (mar.context["amount"], mar.context["charge_date"]) == ("1500.00", "2025-03-05")
    assert [m.recipient for m in queued("billing/autopay_enrollment")] == [manual.tenant.email] * 2


def test_it_renders_every_billing_message_it_queued(build):
    """Each template exists and renders with the context its job gives it."""
    from notifications.email.rendering import message_render

    build.lease(due_day=1, start="2024-05-03", end="2025-05-02")
    build.lease(due_day=5, autopay=True)
    build.lease(due_day=3)
    charge()
    for command in ["rent_reminders", "overdue_notices", "lease_expiration", "autopay_reminders"]:
        run(command, "--as-of", "2025-02-02T12:00:00")
    run("overdue_notices", "--as-of", "2025-02-10")
    templates = set()
    for message in queued():
        subject, text, html = message_render(message)
        assert subject and "{{" not in text and html
        templates.add(message.template)
    assert templates == {
        "billing/overdue_notice",
        "billing/lease_expiry_tenant",
        "billing/lease_expiry_owner",
        "billing/autopay_precharge",
        "billing/autopay_enrollment",
        "billing/rent_reminder",
    }


def test_it_leaves_no_partial_batch_when_interrupted(build, monkeypatch):
    from billing.services import notices

    build.leases(5)
    charge()
    real = notices.notifications_enqueue_many
    calls = []

    def crash_on_second(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            real(**kwargs)  # the messages are written, then the process dies
            raise RuntimeError("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(notices, "notifications_enqueue_many", crash_on_second)
    with pytest.raises(RuntimeError):
        overdue_notices_send(now=at("2025-02-03"), batch_size=2)
    assert (BillingNotice.objects.count(), len(queued())) == (2, 2)
    monkeypatch.undo()
    summary = overdue_notices_send(now=at("2025-02-03"), batch_size=2)
    assert (summary["notices"], summary["messages_queued"]) == (3, 3)
    assert (BillingNotice.objects.count(), len(queued())) == (5, 5)


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["rent_reminders", "overdue_notices", "lease_expiration", "autopay_reminders"])
def test_it_issues_the_same_queries_for_10_and_1000_leases(build, command):
    from django.core.management import call_command

    def queries(count: int) -> int:
        Lease.objects.update(status=Lease.Status.ENDED, end_date=date(2025, 2, 28))
        build.leases(count, due_day=5, end="2025-03-31", autopay=command == "autopay_reminders")
        charge()
        moment = {"overdue_notices": "2025-02-07", "lease_expiration": "2025-03-20"}.get(command, "2025-02-02")
        with CaptureQueriesContext(connection) as captured:
            summary = call_command(command, "--as-of", moment, "--batch-size", "5000", stdout=open("/dev/null", "w"))
        assert summary.get("notices", summary.get("precharge_notices")) == count, summary
        return len(captured)

    # Apart from batch count: notifications queues 1,000 messages per chunk (three queries:
    # the messages, their keys, the keys that went in), and lease-expiration sends two
    # messages per lease.
    extra = 3 if command == "lease_expiration" else 0
    assert queries(1000) == queries(10) + extra


def test_it_keeps_the_once_rule_in_the_database(build):
    from django.db import IntegrityError, transaction

    lease = build.lease(due_day=1)
    charge()
    entry = lease.ledger_entries.get()
    BillingNotice.objects.create(
        kind="overdue", tier=5, charge=entry, lease=lease, dedupe_key="a", sent_on=date.today()
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        BillingNotice.objects.create(
            kind="overdue", tier=5, charge=entry, lease=lease, dedupe_key="b", sent_on=date.today() + timedelta(days=1)
        )
