from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Expense, LedgerEntry, OwnerStatement, Payout, RecurringExpense, TenantInvoice
from billing.services.payments import payment_record
from billing.services.statements import FIGURES, statements_generate
from tests.job_commands import at, queued, run

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def january(build):
    """Two owners' January 2025, built by the jobs themselves where a job exists."""
    alice = build.owner(name="Alice Owner", management_fee_percent=D("10.00"))
    bob = build.owner(name="Bob Owner", management_fee_percent=D("8.00"))
    maple = build.property(alice, name="12 Maple Street")
    oak = build.property(bob, name="7 Oak Road")
    full = build.lease(rent="1000.00", unit=build.unit(maple))
    starts = build.lease(rent="1500.00", start="2025-01-17", end="2026-01-16", unit=build.unit(maple))
    build.lease(rent="900.00", unit=build.unit(oak))
    RecurringExpense.objects.create(
        property=maple, description="Landscaping", amount=D("200.00"), starts_on=date(2024, 1, 1)
    )
    RecurringExpense.objects.create(
        property=maple,
        description="Parking",
        amount=D("45.00"),
        tenant_billable=True,
        lease=full,
        starts_on=date(2024, 1, 1),
    )
    Expense.objects.create(
        property=maple,
        description="Boiler repair",
        amount=D("300.00"),
        period=date(2025, 1, 1),
        incurred_on=date(2025, 1, 20),
    )
    Expense.objects.create(
        property=oak,
        description="Gutter cleaning",
        amount=D("120.00"),
        period=date(2025, 1, 1),
        incurred_on=date(2025, 1, 9),
    )
    run("generate_charges", "--as-of", "2025-01-01")
    run("recurring_expenses", "--as-of", "2025-01-01")
    payment_record(lease=full, amount=D("1000.00"), received_on=date(2025, 1, 3))
    payment_record(lease=starts, amount=D("500.00"), received_on=date(2025, 1, 20))
    payment_record(lease=full, amount=D("45.00"), received_on=date(2025, 1, 25))  # the parking invoice
    return alice, bob


def figures(statement: OwnerStatement) -> dict:
    return {name: getattr(statement, name) for name in FIGURES}


def test_it_copies_recurring_expenses_and_invoices_the_billable_one(january):
    alice, _ = january
    assert sorted(Expense.objects.filter(template__isnull=False).values_list("description", "amount")) == [
        ("Landscaping", D("200.00")),
        ("Parking", D("45.00")),
    ]
    invoice = TenantInvoice.objects.get()
    assert (invoice.amount, invoice.due_date) == (D("45.00"), date(2025, 1, 15))
    charge = LedgerEntry.objects.get(invoice=invoice)
    assert (charge.kind, charge.category, charge.description) == ("charge", "expense", "Parking - January 2025")
    again = run("recurring_expenses", "--as-of", "2025-01-20")
    assert (again["expenses_created"], again["invoices_created"]) == (0, 0)


def test_it_states_the_month_exactly(january):
    alice, bob = january
    summary = run("generate_statements", "--as-of", "2025-02-01T08:00:00")
    assert summary == {"period": "2025-01-01", "statements_created": 2, "pdfs_rendered": 2}
    a = OwnerStatement.objects.get(owner=alice)
    assert figures(a) == {
        "opening_balance": D("0.00"),
        "rent_billed": D("1725.81"),  # 1000 + 1500 * 15/31 (from Jan 17)
        "rent_collected": D("1500.00"),
        "other_income": D("45.00"),  # the parking invoice, paid
        "expenses": D("545.00"),  # landscaping 200 + parking 45 + boiler 300
        "management_fee": D("150.00"),  # 10% of rent collected
        "net": D("850.00"),
        "payouts": D("0.00"),
        "closing_balance": D("850.00"),
    }
    b = OwnerStatement.objects.get(owner=bob)
    assert (b.rent_billed, b.rent_collected, b.expenses, b.net) == (D("900.00"), D("0.00"), D("120.00"), D("-120.00"))
    pdf = a.pdf.read()
    assert pdf.startswith(b"%PDF-") and len(pdf) > 1500
    assert sorted(m.recipient for m in queued("billing/statement_ready")) == sorted([alice.email, bob.email])


def test_it_creates_no_statement_twice_and_regenerates_with_force(january):
    alice, _ = january
    run("generate_statements", "--as-of", "2025-02-01")
    again = run("generate_statements", "--as-of", "2025-02-01T09:00:00")
    assert (again["statements_created"], again["pdfs_rendered"]) == (0, 0)
    payment_record(
        lease=alice.properties.get().units.first().leases.get(), amount=D("10.00"), received_on=date(2025, 1, 31)
    )  # a late-recorded January payment
    forced = run("generate_statements", "--as-of", "2025-02-01T10:00:00", "--force")
    assert (forced["statements_regenerated"], forced["pdfs_rendered"]) == (2, 2)
    statement = OwnerStatement.objects.get(owner=alice)
    assert statement.rent_collected == D("1510.00")
    assert statement.generated_at == at("2025-02-01", 10)
    assert statement.pdf.read().startswith(b"%PDF-")
    assert OwnerStatement.objects.count() == 2
    assert len(queued("billing/statement_ready")) == 2  # the owner is not mailed again


def test_it_pays_out_once_and_records_why_a_payout_is_not_payable(january):
    alice, bob = january
    summary = run("generate_payouts", "--as-of", "2025-02-02T10:00:00")
    assert summary == {"period": "2025-01-01", "payouts_created": 1, "not_payable": 1, "total": "850.00"}
    paid = Payout.objects.get(owner=alice)
    assert (paid.amount, paid.status, paid.management_fee, paid.expenses) == (
        D("850.00"),
        "pending",
        D("150.00"),
        D("545.00"),
    )
    refused = Payout.objects.get(owner=bob)
    assert (refused.amount, refused.status) == (D("-120.00"), "not_payable")
    assert "net -120.00" in refused.reason
    again = run("generate_payouts", "--as-of", "2025-02-02T11:00:00")
    assert (again["payouts_created"], again["not_payable"]) == (0, 0)
    assert Payout.objects.count() == 2


def test_it_carries_the_closing_balance_and_payouts_into_next_month(january):
    alice, _ = january
    run("generate_statements", "--as-of", "2025-02-01")
    run("generate_payouts", "--as-of", "2025-02-02")
    run("generate_charges", "--as-of", "2025-02-01")
    run("generate_statements", "--as-of", "2025-03-01")
    feb = OwnerStatement.objects.get(owner=alice, period=date(2025, 2, 1))
    assert (feb.opening_balance, feb.payouts) == (D("850.00"), D("850.00"))
    # February: rent billed 2500, nothing collected; landscaping 200 and parking 45 were not
    # copied into February (recurring-expenses did not run for it).
    assert (feb.rent_billed, feb.rent_collected, feb.net, feb.closing_balance) == (
        D("2500.00"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
    )


def test_it_writes_nothing_on_a_dry_run(january):
    statements = run("generate_statements", "--as-of", "2025-02-01", "--dry-run")
    payouts = run("generate_payouts", "--as-of", "2025-02-02", "--dry-run")
    assert statements["statements_created"] == 2
    assert (payouts["payouts_created"], payouts["not_payable"], payouts["total"]) == (1, 1, "850.00")
    assert OwnerStatement.objects.count() == Payout.objects.count() == 0


def test_it_renders_pdfs_left_pending_by_an_interrupted_run(january, monkeypatch):
    from billing.services import statements

    monkeypatch.setattr(statements, "statements_render", lambda **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        statements_generate(now=at("2025-02-01"))
    assert OwnerStatement.objects.filter(pdf="").count() == 2
    monkeypatch.undo()
    summary = statements_generate(now=at("2025-02-01"))
    assert (summary["statements_created"], summary["pdfs_rendered"]) == (0, 2)
    assert not OwnerStatement.objects.filter(pdf="").exists()


def test_it_lists_statements_in_admin_with_a_download_link(january, admin_client):
    run("generate_statements", "--as-of", "2025-02-01")
    statement = OwnerStatement.objects.first()
    page = admin_client.get("/admin/billing/ownerstatement/")
    assert page.status_code == 200
    link = f"/admin/billing/ownerstatement/{statement.pk}/pdf/"
    assert link in page.content.decode()
    download = admin_client.get(link)
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert b"".join(download.streaming_content).startswith(b"%PDF-")


def test_it_refuses_the_download_to_anonymous_users(january, client):
    run("generate_statements", "--as-of", "2025-02-01")
    statement = OwnerStatement.objects.first()
    response = client.get(f"/admin/billing/ownerstatement/{statement.pk}/pdf/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_it_downloads_the_pdf_from_the_statement_page(january, admin_client, client):
    run("generate_statements", "--as-of", "2025-02-01")
    statement = OwnerStatement.objects.first()
    page = admin_client.get(f"/admin/billing/ownerstatement/{statement.pk}/change/").content.decode()
    pdf_links = [href for href in re.findall(r'href="([^"]*)"', page) if "pdf" in href.lower()]
    assert pdf_links == [f"/admin/billing/ownerstatement/{statement.pk}/pdf/"]  # no link to the raw file
    download = admin_client.get(pdf_links[0])
    assert (download.status_code, download["Content-Type"]) == (200, "application/pdf")
    assert download["Content-Disposition"].startswith("attachment;")
    assert b"".join(download.streaming_content).startswith(b"%PDF-")
    anonymous = client.get(pdf_links[0])
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


@pytest.mark.postgres
def test_it_issues_the_same_queries_for_10_and_200_owners(build):
    from billing.models import Owner

    def queries(owners: int, month: str) -> int:
        Owner.objects.update(management_fee_percent=D("5.00"))
        for _ in range(owners):
            build.lease(unit=build.unit(build.property(build.owner())))
        run("generate_charges", "--as-of", month)
        with CaptureQueriesContext(connection) as captured:
            statements_generate(now=at(month), batch_size=500)
        return len(captured)

    # Owners of the first call have statements (skipped); PDFs are files, not queries.
    assert queries(10, "2025-02-01") == queries(200, "2025-03-01")


def test_it_pays_out_the_rest_after_an_interrupted_run(january, monkeypatch):
    from billing.services import statements

    real = statements.Payout.objects.bulk_create
    calls = []

    def crash_on_second(objs, **kwargs):
        calls.append(1)
        result = real(objs, **kwargs)
        if len(calls) == 2:
            raise RuntimeError("worker killed")  # inside the second batch's transaction
        return result

    monkeypatch.setattr(statements.Payout.objects, "bulk_create", crash_on_second)
    with pytest.raises(RuntimeError):
        statements.payouts_generate(now=at("2025-02-02"), batch_size=1)
    assert Payout.objects.count() == 1
    monkeypatch.undo()
    summary = statements.payouts_generate(now=at("2025-02-02"), batch_size=1)
    assert summary["payouts_created"] + summary["not_payable"] == 1
    assert Payout.objects.count() == 2
