from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command

from billing.job_definitions import JOB_DEFINITIONS
from billing.models import DailySnapshot, Lease, LedgerEntry, Owner, OwnerStatement
from billing.services.payments import payment_record
from tests.job_commands import run

pytestmark = pytest.mark.django_db
D = Decimal


def test_it_snapshots_the_day_once(build):
    lease = build.lease(rent="1000.00", unit=build.unit())
    build.unit()  # vacant
    run("generate_charges", "--as-of", "2025-02-01")
    payment_record(lease=lease, amount=D("600.00"), received_on=date(2025, 2, 9))
    payment_record(lease=lease, amount=D("100.00"), received_on=date(2025, 2, 10))  # after the day

    summary = run("generate_analytics", "--as-of", "2025-02-10T01:00:00")

    snapshot = DailySnapshot.objects.get()
    assert snapshot.day == date(2025, 2, 9) and summary["created"] == 1
    assert (snapshot.rent_billed_mtd, snapshot.rent_collected_mtd) == (D("1000.00"), D("600.00"))
    assert (snapshot.units_total, snapshot.units_occupied, snapshot.occupancy_percent) == (2, 1, D("50.00"))
    assert run("generate_analytics", "--as-of", "2025-02-10T02:00:00")["created"] == 0
    assert run("generate_analytics", "--as-of", "2025-02-10T03:00:00", "--dry-run")["created"] == 0
    assert DailySnapshot.objects.count() == 1


def test_it_registers_the_eleven_billing_jobs_with_their_schedules():
    schedules = {d.name: (d.command, d.cron_expression) for d in JOB_DEFINITIONS}
    assert schedules == {
        "generate-charges": ("generate_charges", "0 6 1 * *"),
        "recurring-expenses": ("recurring_expenses", "0 7 1 * *"),
        "generate-statements": ("generate_statements", "0 8 1 * *"),
        "generate-payouts": ("generate_payouts", "0 10 2 * *"),
        "lease-expiration": ("lease_expiration", "0 7 * * *"),
        "reconciliation": ("reconciliation", "0 9 * * *"),
        "financial-reconciliation": ("financial_reconciliation", "0 11 * * *"),
        "autopay-reminders": ("autopay_reminders", "0 14 * * *"),
        "rent-reminders": ("rent_reminders", "0 15 * * *"),
        "overdue-notices": ("overdue_notices", "0 16 * * *"),
        "generate-analytics": ("generate_analytics", "0 1 * * *"),
        "submit-payouts": ("submit_payouts", "15 * * * *"),
        "reconcile-payouts": ("reconcile_payouts", "30 10 * * *"),
    }


def test_it_seeds_the_jobs_through_seed_jobs():
    from jobs.models import Job

    call_command("seed_jobs", verbosity=0)
    names = {d.name for d in JOB_DEFINITIONS}
    jobs = Job.objects.filter(name__in=names)
    assert jobs.count() == len(JOB_DEFINITIONS) == 13
    assert jobs.get(name="generate-charges").cron_expression == "0 6 1 * *"


def demo_fingerprint() -> tuple:
    leases = Lease.objects.order_by("tenant__email").values_list(
        "tenant__email", "monthly_rent", "start_date", "end_date", "due_day", "status", "balance"
    )
    return (
        list(leases),
        sum(LedgerEntry.objects.values_list("amount", flat=True)),
    )


def test_it_seeds_a_deterministic_demo_once_and_runs_every_job_on_it(capsys):
    from django.db import transaction

    from jobs.models import JobRun

    with transaction.atomic():
        call_command("seed_demo", apps=["billing"], size="small", as_of="2025-03-15")
        first = demo_fingerprint()
        transaction.set_rollback(True)
    call_command("seed_jobs", verbosity=0)
    call_command("seed_demo", apps=["billing"], size="small", as_of="2025-03-15", run_jobs=True)
    leases = first[0]
    assert len(leases) == 40
    assert {lease[5] for lease in leases} == {"active", "ended", "draft"}
    runs = dict(
        JobRun.objects.filter(job__name__in={d.name for d in JOB_DEFINITIONS}).values_list("job__name", "status")
    )
    assert len(runs) == 11 and set(runs.values()) == {"succeeded"}, runs
    statement = OwnerStatement.objects.filter(period=date(2025, 2, 1)).first()
    assert statement is not None and statement.pdf.read().startswith(b"%PDF-")

    call_command("seed_demo", apps=["billing"], size="small", as_of="2025-03-15")
    assert "already present" in capsys.readouterr().out
    assert Owner.objects.count() == 2


def test_it_builds_the_same_demo_from_the_same_seed():
    from django.db import transaction

    prints = []
    for _ in range(2):
        with transaction.atomic():
            call_command("seed_demo", apps=["billing"], count=60, as_of="2025-03-15", seed=3)
            prints.append(demo_fingerprint())
            transaction.set_rollback(True)
    assert prints[0] == prints[1]
    assert len(prints[0][0]) == 60


def test_it_shows_every_billing_admin_page(admin_client):
    from django.contrib import admin

    from billing import models

    call_command("seed_demo", apps=["billing"], size="small", as_of="2025-03-15")
    for model in admin.site._registry:
        if model._meta.app_label != "billing":
            continue
        url = f"/admin/billing/{model._meta.model_name}/"
        assert admin_client.get(url).status_code == 200, url
        first = model.objects.first()
        if first is not None:
            assert admin_client.get(f"{url}{first.pk}/change/").status_code == 200, url
    assert models.Lease.objects.exists()
