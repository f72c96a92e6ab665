"""Balances move by exactly the ledger rows a run inserted, whatever ran before or beside it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing.models import BalanceCorrection, Lease, RecurringExpense
from tests.job_commands import run

pytestmark = pytest.mark.django_db


def test_it_moves_a_balance_by_every_billable_expense_of_the_month(build):
    lease = build.lease(rent="1000.00")
    for description, amount in (("Water", "35.50"), ("Parking", "60.00")):
        RecurringExpense.objects.create(
            property=lease.unit.property,
            lease=lease,
            description=description,
            amount=Decimal(amount),
            tenant_billable=True,
            starts_on=date(2025, 1, 1),
        )

    run("generate_charges", "--as-of", "2025-03-02")
    run("recurring_expenses", "--as-of", "2025-03-02", "--batch-size", "1")
    run("recurring_expenses", "--as-of", "2025-03-02")

    lease.refresh_from_db()
    assert lease.balance == Decimal("1095.50")


def test_it_moves_no_balance_on_a_rerun_with_another_batch_size(build):
    leases = build.leases(7, rent="800.00")

    first = run("generate_charges", "--as-of", "2025-03-02", "--batch-size", "2")
    second = run("generate_charges", "--as-of", "2025-03-02", "--batch-size", "3")

    assert (first["charges_created"], second["charges_created"], second["already_present"]) == (7, 0, 7)
    assert set(Lease.objects.filter(pk__in=[x.pk for x in leases]).values_list("balance", flat=True)) == {
        Decimal("800.00")
    }


def test_it_fixes_a_drifted_balance_once_across_runs(build):
    lease = build.lease(rent="1000.00")
    run("generate_charges", "--as-of", "2025-03-02")
    Lease.objects.filter(pk=lease.pk).update(balance=Decimal("1025.00"))

    first = run("reconciliation", "--as-of", "2025-03-03", "--batch-size", "2")
    second = run("reconciliation", "--as-of", "2025-03-03", "--batch-size", "3")

    lease.refresh_from_db()
    assert lease.balance == Decimal("1000.00")
    assert (first["corrected"], second["corrected"]) == (1, 0)
    assert list(BalanceCorrection.objects.values_list("before", "after")) == [(Decimal("1025.00"), Decimal("1000.00"))]
