"""The remaining jobs issue the same number of queries for 10 and for 1,000 rows (one batch)."""

from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Payment, RecurringExpense, SettlementRecord
from billing.models.leases import Owner
from billing.models.statements import Payout
from tests.job_commands import at

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def count_queries(command: str, *args: str) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as captured:
        summary = call_command(command, *args, "--batch-size", "5000", stdout=io.StringIO())
    return len(captured), summary


def test_it_copies_expenses_in_constant_queries(build):
    def queries(count: int, month: str) -> int:
        leases = build.leases(count)
        RecurringExpense.objects.bulk_create(
            RecurringExpense(
                property_id=lease.unit.property_id,
                description="Parking",
                amount=Decimal("40.00"),
                tenant_billable=True,
                lease=lease,
                starts_on=date(2025, 1, 1),
            )
            for lease in leases
        )
        RecurringExpense.objects.exclude(lease__in=leases).update(active=False)
        n, summary = count_queries("recurring_expenses", "--as-of", month)
        assert summary["invoices_created"] == count
        return n

    assert queries(10, "2025-02-01") == queries(1000, "2025-03-01")


def test_it_pays_out_in_constant_queries(build):
    def queries(owners: int, month: str) -> int:
        for _ in range(owners):
            build.lease(unit=build.unit(build.property(build.owner())))
        call_command("generate_charges", "--as-of", month, stdout=io.StringIO())
        n, summary = count_queries("generate_payouts", "--as-of", month)
        return n

    # Each call pays out the previous month for every owner so far; both are one batch.
    assert queries(10, "2025-02-02") == queries(200, "2025-03-02")


def test_it_matches_settlements_in_constant_queries(build):
    def queries(count: int, day: date) -> int:
        lease = build.lease()
        Payment.objects.bulk_create(
            Payment(lease=lease, amount=Decimal("10.00"), received_on=day, processor_reference=f"p{day}-{i}")
            for i in range(count)
        )
        SettlementRecord.objects.bulk_create(
            SettlementRecord(
                processor_reference=f"p{day}-{i}",
                amount=Decimal("10.00") if i % 3 else Decimal("9.00"),
                settled_on=day,
                source="file",
                imported_at=at("2025-02-10"),
            )
            for i in range(count - count // 10)
        )
        n, summary = count_queries("financial_reconciliation", "--as-of", (day + timedelta(days=5)).isoformat())
        assert summary["matched"] + summary["amount_mismatch"] + summary["missing_at_processor"] == count
        return n

    assert queries(10, date(2025, 2, 1)) == queries(1000, date(2025, 3, 1))


def test_it_snapshots_analytics_in_constant_queries(build):
    def queries(count: int, day: str) -> int:
        build.leases(count)
        call_command("generate_charges", "--as-of", day, stdout=io.StringIO())
        with CaptureQueriesContext(connection) as captured:
            call_command("generate_analytics", "--as-of", day, stdout=io.StringIO())
        return len(captured)

    assert queries(10, "2025-02-02") == queries(1000, "2025-03-02")


def test_it_turns_jit_off_for_the_job_and_back_on_after(build):
    from billing.management.base import jit_disabled

    def jit() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW jit")
            return cursor.fetchone()[0]

    before = jit()
    with jit_disabled():
        assert jit() == "off"
    assert jit() == before


def pending_payouts(count: int, period: date) -> list[Payout]:
    owners = Owner.objects.bulk_create(Owner(name=f"O{period}-{i}", email=f"o{i}@example.com") for i in range(count))
    return Payout.objects.bulk_create(
        Payout(
            owner=owner,
            period=period,
            rent_collected=Decimal("100.00"),
            other_income=Decimal("0.00"),
            expenses=Decimal("0.00"),
            management_fee=Decimal("0.00"),
            amount=Decimal("100.00"),
            status="pending",
            created_at=at("2025-02-02"),
        )
        for owner in owners
    )


def test_it_submits_and_reconciles_payouts_in_constant_queries(build, provider):
    provider.page_size = 5000

    def queries(count: int, period: date) -> tuple[int, int]:
        payouts = pending_payouts(count, period)
        n_submit, summary = count_queries("submit_payouts", "--as-of", "2025-03-02T11:15:00")
        assert summary["accepted"] == count
        for payout in payouts:
            provider.settle(f"payout-{payout.pk}", "paid")
        with CaptureQueriesContext(connection) as captured:
            summary = call_command("reconcile_payouts", "--as-of", "2025-03-03T10:30:00", stdout=io.StringIO())
        assert summary["paid"] == count
        return n_submit, len(captured)

    assert queries(10, date(2025, 1, 1)) == queries(200, date(2025, 2, 1))
