from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Lease, LedgerEntry
from billing.services import charges as charges_service
from tests.job_commands import WorkerKilled, at, killed_at, run

pytestmark = pytest.mark.django_db


def rent_rows():
    return {
        e.lease_id: (e.description, e.amount, e.due_date)
        for e in LedgerEntry.objects.filter(kind="charge", category="rent")
    }


def test_it_charges_full_and_prorated_months_exactly(build):
    full = build.lease(rent="1200.00", due_day=5)
    starts = build.lease(rent="1000.00", start="2025-02-15", end="2026-02-14")
    ends = build.lease(rent="1500.00", start="2024-03-01", end="2025-02-10")
    short = build.lease(rent="2800.00", start="2025-02-10", end="2025-02-19", due_day=1)
    clamp = build.lease(rent="999.99", due_day=31)
    build.lease(start="2025-03-01")  # starts next month
    build.lease(start="2024-01-01", end="2025-01-31", status=Lease.Status.ENDED)  # ended last month
    build.lease(status=Lease.Status.DRAFT)

    summary = run("generate_charges", "--as-of", "2025-02-01")

    assert summary["charges_created"] == 5
    assert summary["leases_processed"] == 5
    assert summary["already_present"] == 0
    assert summary["errors"] == 0
    assert rent_rows() == {
        full.pk: ("Rent - February 2025", Decimal("1200.00"), date(2025, 2, 5)),
        # 14 of 28 days; due on its first day, not on the 1st before it began
        starts.pk: ("Rent - February 2025 (prorated, 14 of 28 days)", Decimal("500.00"), date(2025, 2, 15)),
        # 1500 * 10 / 28 = 535.714... -> 535.71
        ends.pk: ("Rent - February 2025 (prorated, 10 of 28 days)", Decimal("535.71"), date(2025, 2, 1)),
        short.pk: ("Rent - February 2025 (prorated, 10 of 28 days)", Decimal("1000.00"), date(2025, 2, 10)),
        clamp.pk: ("Rent - February 2025", Decimal("999.99"), date(2025, 2, 28)),
    }
    full.refresh_from_db()
    starts.refresh_from_db()
    assert (full.balance, starts.balance) == (Decimal("1200.00"), Decimal("500.00"))


def test_it_rounds_half_cents_up(build):
    # 1000.10 * 15 / 30 = 500.05 exactly; 333.33 * 1 / 30 = 11.111 -> 11.11; 100.01 * 15/30 = 50.005 -> 50.01
    a = build.lease(rent="1000.10", start="2025-04-16")
    b = build.lease(rent="333.33", start="2025-04-30")
    c = build.lease(rent="100.01", start="2025-04-16")
    run("generate_charges", "--as-of", "2025-04-01")
    amounts = {k: v[1] for k, v in rent_rows().items()}
    assert amounts == {a.pk: Decimal("500.05"), b.pk: Decimal("11.11"), c.pk: Decimal("50.01")}


def test_it_creates_nothing_on_a_second_run(build):
    build.leases(3)
    run("generate_charges", "--as-of", "2025-02-01")
    again = run("generate_charges", "--as-of", "2025-02-01T18:00:00")
    assert (again["charges_created"], again["already_present"]) == (0, 3)
    assert LedgerEntry.objects.count() == 3
    assert set(Lease.objects.values_list("balance", flat=True)) == {Decimal("1000.00")}


def test_it_reports_a_lease_without_rent_as_an_error(build):
    build.lease(rent="0.00")
    summary = run("generate_charges", "--as-of", "2025-02-01")
    assert (summary["charges_created"], summary["errors"]) == (0, 1)


def test_it_writes_nothing_on_a_dry_run(build):
    build.leases(4)
    summary = run("generate_charges", "--as-of", "2025-02-01", "--dry-run")
    assert summary["charges_created"] == 4
    assert summary["dry_run"] is True
    assert LedgerEntry.objects.count() == 0


def test_it_leaves_no_partial_batch_when_interrupted_and_completes_next_run(build):
    leases = build.leases(7)
    # The second batch dies after inserting its charges, as it moves their balances.
    with pytest.raises(WorkerKilled), killed_at('UPDATE "billing_lease"', 2):
        charges_service.charges_generate(now=_feb(), batch_size=3)
    assert set(LedgerEntry.objects.values_list("lease_id", flat=True)) == {lease.pk for lease in leases[:3]}
    assert balances() == [Decimal("1000.00")] * 3 + [Decimal("0.00")] * 4

    # The retry has the same moment but falls into other batches: each lease is charged once.
    summary = charges_service.charges_generate(now=_feb(), batch_size=5)
    assert (summary["charges_created"], summary["already_present"]) == (4, 3)
    assert LedgerEntry.objects.count() == 7
    assert balances() == [Decimal("1000.00")] * 7


def test_it_charges_each_lease_once_per_month_across_runs_and_months(build):
    lease = build.lease(rent="900.00")
    for moment in ("2025-02-01", "2025-02-01T18:00:00", "2025-02-15", "2025-03-01", "2025-03-01"):
        run("generate_charges", "--as-of", moment)
    later = build.lease(rent="600.00", start="2025-03-01")
    run("generate_charges", "--as-of", "2025-03-20")
    periods = sorted(LedgerEntry.objects.values_list("lease_id", "period"))
    assert periods == [(lease.pk, date(2025, 2, 1)), (lease.pk, date(2025, 3, 1)), (later.pk, date(2025, 3, 1))]
    lease.refresh_from_db()
    later.refresh_from_db()
    assert (lease.balance, later.balance) == (Decimal("1800.00"), Decimal("600.00"))


def balances() -> list[Decimal]:
    return list(Lease.objects.order_by("id").values_list("balance", flat=True))


def _feb():
    return at("2025-02-01", 6)


def test_it_issues_the_same_queries_for_10_and_1000_leases(build):
    def queries(count: int) -> int:
        leases = build.leases(count)
        with CaptureQueriesContext(connection) as captured:
            charges_service.charges_generate(now=_feb(), batch_size=5000)
        assert LedgerEntry.objects.filter(lease__in=leases).count() == count
        return len(captured)

    small = queries(10)
    # The second set's leases are charged, the first set's already present: same batch count.
    assert queries(1000) == small
