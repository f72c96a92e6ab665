from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import BalanceCorrection, Lease, LedgerEntry
from billing.services import balances
from billing.services.payments import payment_record
from tests.job_commands import WorkerKilled, at, killed_at, run

pytestmark = pytest.mark.django_db


def drift(lease: Lease, balance: str) -> None:
    Lease.objects.filter(pk=lease.pk).update(balance=Decimal(balance))


def test_it_fixes_drift_from_the_ledger_and_records_each_correction(build):
    ok = build.lease(rent="1000.00")
    owed = build.lease(rent="1200.00")
    paid = build.lease(rent="800.00")
    run("generate_charges", "--as-of", "2025-02-01")
    payment_record(lease=paid, amount=Decimal("500.00"), received_on=date(2025, 2, 3))
    drift(owed, "1150.00")  # someone edited it by hand
    drift(paid, "0.00")

    summary = run("reconciliation", "--as-of", "2025-02-05T09:00:00")

    assert summary["leases_checked"] == 3
    assert summary["corrected"] == 2
    assert summary["net_correction"] == "350.00"
    corrections = {c.lease_id: (c.before, c.after, c.difference) for c in BalanceCorrection.objects.all()}
    assert corrections == {
        owed.pk: (Decimal("1150.00"), Decimal("1200.00"), Decimal("50.00")),
        paid.pk: (Decimal("0.00"), Decimal("300.00"), Decimal("300.00")),
    }
    assert BalanceCorrection.objects.get(lease=owed).corrected_at == at("2025-02-05", 9)
    balances_now = dict(Lease.objects.values_list("pk", "balance"))
    assert balances_now == {ok.pk: Decimal("1000.00"), owed.pk: Decimal("1200.00"), paid.pk: Decimal("300.00")}


def test_it_corrects_nothing_on_a_second_run(build):
    lease = build.lease()
    drift(lease, "7.00")
    run("reconciliation")
    again = run("reconciliation")
    assert again["corrected"] == 0
    assert BalanceCorrection.objects.count() == 1


def test_it_reports_drift_but_writes_nothing_on_a_dry_run(build):
    lease = build.lease()
    drift(lease, "7.00")
    summary = run("reconciliation", "--dry-run")
    assert (summary["drifted"], summary["corrected"]) == (1, 0)
    assert summary["corrections"] == [{"lease": lease.pk, "before": "7.00", "after": "0.00"}]
    assert BalanceCorrection.objects.count() == 0
    lease.refresh_from_db()
    assert lease.balance == Decimal("7.00")


def test_it_leaves_no_partial_batch_when_interrupted(build):
    leases = build.leases(5)
    for lease in leases:
        drift(lease, "1.00")
    # The second batch dies after recording its corrections, as it moves the balances.
    with pytest.raises(WorkerKilled), killed_at('UPDATE "billing_lease"', 2):
        balances.balances_reconcile(now=at("2025-02-05"), batch_size=2)
    assert sorted(BalanceCorrection.objects.values_list("lease_id", flat=True)) == [leases[0].pk, leases[1].pk]
    assert Lease.objects.filter(balance=Decimal("1.00")).count() == 3  # the second batch rolled back whole

    # The retry has the same moment but falls into other batches: each lease is corrected once.
    summary = balances.balances_reconcile(now=at("2025-02-05"), batch_size=3)
    assert summary["corrected"] == 3
    assert BalanceCorrection.objects.count() == 5
    assert not Lease.objects.exclude(balance=Decimal("0.00")).exists()


def test_it_takes_cents_that_add_up_for_no_drift_and_fixes_a_few_cents(build):
    exact, off = build.lease(), build.lease()
    for lease in (exact, off):
        for amount in ("0.10", "0.20", "0.70", "-0.07"):
            LedgerEntry.objects.create(
                lease=lease,
                kind="adjustment",
                category="other",
                description="Adjustment",
                amount=Decimal(amount),
                period=date(2025, 2, 1),
                posted_on=date(2025, 2, 1),
            )
    drift(exact, "0.93")
    drift(off, "0.90")

    summary = run("reconciliation", "--as-of", "2025-02-05T09:00:00")

    assert (summary["corrected"], summary["net_correction"]) == (1, "0.03")
    correction = BalanceCorrection.objects.get()
    assert (correction.lease_id, correction.before, correction.after) == (off.pk, Decimal("0.90"), Decimal("0.93"))
    assert correction.difference == Decimal("0.03")
    assert set(Lease.objects.values_list("balance", flat=True)) == {Decimal("0.93")}
    assert run("reconciliation")["corrected"] == 0


def test_it_issues_the_same_queries_for_10_and_1000_leases(build):
    def queries(count: int) -> int:
        Lease.objects.update(balance=Decimal("0.00"))
        leases = build.leases(count)
        Lease.objects.filter(pk__in=[lease.pk for lease in leases]).update(balance=Decimal("3.00"))
        with CaptureQueriesContext(connection) as captured:
            summary = balances.balances_reconcile(now=at("2025-02-05"), batch_size=5000)
        assert summary["corrected"] == count
        return len(captured)

    assert queries(10) == queries(1000)


def test_it_never_rewrites_ledger_history(build):
    lease = build.lease()
    run("generate_charges", "--as-of", "2025-02-01")
    entry = LedgerEntry.objects.get()
    entry.amount = Decimal("1.00")
    with pytest.raises(TypeError, match="append-only"):
        entry.save()
    with pytest.raises(TypeError, match="append-only"):
        LedgerEntry.objects.filter(lease=lease).update(amount=Decimal("1.00"))
    with pytest.raises(TypeError, match="append-only"):
        LedgerEntry.objects.filter(lease=lease).delete()
