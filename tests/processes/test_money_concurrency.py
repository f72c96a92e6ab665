"""Two money commands run by hand at once, as real processes, with different batch sizes: every
ledger row exists once and every lease balance equals the sum of its ledger afterwards."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from django.db.models import Count, Sum

from tests.process_group import log_text

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.processes,
]

LEASES = 400
MANY_LEASES = 2_000  # enough batches that the two charge runs overlap for seconds
AS_OF = "2026-03-05"


@pytest.fixture
def leases(transactional_db):
    return lease_set(LEASES)


def lease_set(count: int) -> list:
    """``count`` leases of one property, rents varied; every fourth lease passes on a water bill
    and every eighth a parking fee as well (two billable expenses on one lease in one month)."""
    from billing.models import Lease, Owner, Property, RecurringExpense, Tenant, Unit

    owner = Owner.objects.create(name="Owner", email="owner@example.com")
    prop = Property.objects.create(owner=owner, name="Harbor House")
    units = Unit.objects.bulk_create([Unit(property=prop, name=f"U{i}") for i in range(count)])
    tenants = Tenant.objects.bulk_create([Tenant(name=f"T{i}", email=f"t{i}@example.com") for i in range(count)])
    rows = Lease.objects.bulk_create(
        [
            Lease(
                unit=unit,
                tenant=tenant,
                monthly_rent=Decimal(900 + i % 37 * 10),
                start_date=date(2025, 1, 1) if i % 5 else date(2026, 3, 10),  # some prorated
                due_day=1,
            )
            for i, (unit, tenant) in enumerate(zip(units, tenants, strict=True))
        ]
    )
    templates = []
    for i, lease in enumerate(rows):
        for every, description, amount in ((4, "Water", "35.50"), (8, "Parking", "60.00")):
            if i % every == 0:
                templates.append(
                    RecurringExpense(
                        property=prop,
                        lease=lease,
                        description=description,
                        amount=Decimal(amount),
                        tenant_billable=True,
                        starts_on=date(2025, 1, 1),
                    )
                )
    RecurringExpense.objects.bulk_create(templates)
    return rows


def run_twice_at_once(processes, command: str, *args: str) -> list[dict]:
    """Start ``manage.py <command> *args --batch-size 2`` and ``--batch-size 3`` together, wait
    for both, return their summaries (the JSON line each prints last)."""
    started = [processes.manage(f"{command}-{size}", command, *args, "--batch-size", str(size)) for size in (2, 3)]
    codes = [proc.wait(timeout=240) for proc in started]
    assert codes == [0, 0], processes.log_tails()
    return [json.loads(log_text(processes, f"{command}-{size}").strip().splitlines()[-1]) for size in (2, 3)]


def assert_balances_match_ledger():
    from billing.models import Lease

    drifted = [
        (lease.pk, lease.balance, lease.ledger_total)
        for lease in Lease.objects.annotate(ledger_total=Sum("ledger_entries__amount")).order_by("pk")
        if lease.balance != (lease.ledger_total or Decimal("0.00"))
    ]
    assert drifted == []


def test_it_moves_each_balance_once_when_two_charge_runs_overlap(processes, transactional_db):
    from billing.models import LedgerEntry

    lease_set(MANY_LEASES)

    summaries = run_twice_at_once(processes, "generate_charges", "--as-of", AS_OF)

    charges = LedgerEntry.objects.filter(kind="charge", category="rent", period=date(2026, 3, 1))
    assert charges.count() == MANY_LEASES
    assert not charges.values("lease").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert sum(s["charges_created"] for s in summaries) == MANY_LEASES  # each charge reported by one run
    assert_balances_match_ledger()


def test_it_bills_each_recurring_expense_once_when_two_runs_overlap(processes, leases):
    from billing.models import Expense, LedgerEntry, TenantInvoice

    run_twice_at_once(processes, "generate_charges", "--as-of", AS_OF)
    run_twice_at_once(processes, "recurring_expenses", "--as-of", AS_OF)

    billable = LEASES // 4 + LEASES // 8
    assert Expense.objects.filter(period=date(2026, 3, 1)).count() == billable
    assert TenantInvoice.objects.count() == billable
    assert LedgerEntry.objects.filter(kind="charge", category="expense").count() == billable
    assert_balances_match_ledger()


def test_it_fixes_each_drifted_balance_once_when_two_reconciliations_overlap(processes, leases):
    from django.db.models import F

    from billing.models import BalanceCorrection, Lease

    run_twice_at_once(processes, "generate_charges", "--as-of", AS_OF)
    drifted = [lease.pk for lease in leases[::7]]
    Lease.objects.filter(pk__in=drifted).update(balance=F("balance") + Decimal("25.00"))

    summaries = run_twice_at_once(processes, "reconciliation", "--as-of", AS_OF)

    assert sorted(BalanceCorrection.objects.values_list("lease_id", flat=True)) == sorted(drifted)
    assert sum(s["corrected"] for s in summaries) == len(drifted)
    assert_balances_match_ledger()


def test_it_queues_each_overdue_notice_once_when_two_runs_overlap(processes, leases):
    from django.apps import apps

    from billing.models import BillingNotice

    run_twice_at_once(processes, "generate_charges", "--as-of", AS_OF)
    run_twice_at_once(processes, "overdue_notices", "--as-of", "2026-03-25")

    notices = BillingNotice.objects.filter(kind="overdue")
    assert notices.count() == LEASES  # every March charge is unpaid and past due: one notice each
    assert notices.values("charge").distinct().count() == LEASES
    emails = apps.get_model("notifications", "Notification").objects.filter(template="billing/overdue_notice")
    assert emails.count() == LEASES
    assert sorted(emails.values_list("dedupe_key", flat=True)) == sorted(notices.values_list("dedupe_key", flat=True))
