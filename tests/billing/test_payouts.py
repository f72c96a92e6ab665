"""Payouts from pending to paid or failed, against a disbursement provider on 127.0.0.1."""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.db import IntegrityError, transaction

from billing.models import Payout
from jobs.models import AuditEntry
from tests.job_commands import at, run

from .provider_server import KEY

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def payouts(build) -> list[Payout]:
    """January's payouts of two owners, as generate-payouts leaves them (pending)."""
    return [
        Payout.objects.create(
            owner=build.owner(),
            period=date(2025, 1, 1),
            rent_collected=amount,
            other_income=D("0.00"),
            expenses=D("0.00"),
            management_fee=D("0.00"),
            amount=amount,
            status=Payout.Status.PENDING,
            created_at=at("2025-02-02", 10),
        )
        for amount in (D("850.00"), D("1200.50"))
    ]


def status_of(payout: Payout) -> Payout:
    payout.refresh_from_db()
    return payout


def posts(provider) -> list[dict]:
    return [r for r in provider.requests if r["method"] == "POST"]


def test_it_leaves_payouts_pending_and_says_so_without_a_provider(payouts, settings):
    settings.BILLING_PAYOUT_PROVIDER_URL = ""
    err = io.StringIO()
    summary = call_command("submit_payouts", "--as-of", "2025-02-02T11:15:00", stdout=io.StringIO(), stderr=err)
    # A warning on the run (the dashboard shows "succeeded with warnings"), not a plain success.
    warning = "No payout provider is configured (BILLING_PAYOUT_PROVIDER_URL is empty): 2 payout(s) left pending, "
    assert summary == {"not_configured": True, "left_pending": 2, "warnings": [warning + "nothing was sent."]}
    assert "2 payout(s) left pending" in err.getvalue()
    assert {status_of(p).status for p in payouts} == {"pending"}


def test_it_submits_pending_payouts_with_an_idempotency_key_and_reconciles_them(payouts, provider):
    summary = run("submit_payouts", "--as-of", "2025-02-02T11:15:00")
    assert (summary["accepted"], summary["unanswered"]) == (2, 0)
    first, second = (status_of(p) for p in payouts)
    assert (first.status, first.provider_id, first.attempts) == ("submitted", "po_1", 1)
    request = posts(provider)[0]
    assert request["headers"]["Idempotency-Key"] == f"payout-{first.pk}"
    assert json.loads(request["body"]) == {
        "amount": "850.00",
        "currency": "USD",
        "destination": f"owner-{first.owner_id}",
        "reference": f"payout-{first.pk}",
    }
    provider.settle(f"payout-{first.pk}", "paid", paid_at="2025-02-03T09:00:00+00:00")
    provider.settle(f"payout-{second.pk}", "failed", failure_reason="account closed")
    reconciled = run("reconcile_payouts", "--as-of", "2025-02-03T10:30:00")
    assert (reconciled["paid"], reconciled["failed"], reconciled["confirmations_read"]) == (1, 1, 2)
    first, second = (status_of(p) for p in payouts)
    assert (first.status, first.reference, first.paid_at) == ("paid", "po_1", at("2025-02-03", 9))
    assert second.status == "failed" and "account closed" in second.reason
    assert run("reconcile_payouts", "--as-of", "2025-02-04T10:30:00")["confirmations_read"] == 0


def test_it_does_not_pay_twice_when_the_answer_is_lost_after_the_provider_accepted(payouts, provider, settings):
    settings.BILLING_PAYOUT_PROVIDER_TIMEOUT_SECONDS = 0.3
    provider.delay_after_accept = 1.0  # accepted and paid, then answered too late
    with pytest.raises(CommandError, match="got no answer"):
        call_command("submit_payouts", "--as-of", "2025-02-02T11:15:00", stdout=io.StringIO())
    first = status_of(payouts[0])
    assert (first.status, first.provider_id, first.attempts) == ("submitted", None, 1)
    assert "no answer within" in first.last_error
    provider.delay_after_accept = 0.0
    summary = run("submit_payouts", "--as-of", "2025-02-02T12:15:00")
    assert summary["accepted"] == 2
    first = status_of(payouts[0])
    assert (first.status, first.provider_id, first.attempts, first.last_error) == ("submitted", "po_1", 2, "")
    key = f"payout-{first.pk}"
    assert [r["headers"]["Idempotency-Key"] for r in posts(provider)].count(key) == 2
    assert provider.payments[key] == 1  # sent twice, paid once


def test_it_settles_a_payout_whose_answer_was_lost_from_the_confirmations(payouts, provider, settings):
    settings.BILLING_PAYOUT_PROVIDER_TIMEOUT_SECONDS = 0.3
    provider.delay_after_accept = 1.0
    with pytest.raises(CommandError):
        call_command("submit_payouts", "--as-of", "2025-02-02T11:15:00", stdout=io.StringIO())
    provider.delay_after_accept = 0.0
    key = f"payout-{payouts[0].pk}"
    provider.settle(key, "paid")
    summary = run("reconcile_payouts", "--as-of", "2025-02-03T10:30:00")
    assert (summary["paid"], summary["still_submitted"]) == (1, 1)
    paid, waiting = (status_of(p) for p in payouts)
    assert (paid.status, paid.provider_id, paid.reference) == ("paid", "po_1", "po_1")
    assert (waiting.status, waiting.provider_id) == ("submitted", "po_2")  # the provider has it: no resend
    assert run("submit_payouts", "--as-of", "2025-02-03T11:15:00")["accepted"] == 0
    assert [r["headers"]["Idempotency-Key"] for r in posts(provider)].count(key) == 1


def test_it_sends_a_payout_again_after_a_server_error(payouts, provider):
    provider.fail_next = [503]
    with pytest.raises(CommandError, match="HTTP 503"):
        call_command("submit_payouts", "--as-of", "2025-02-02T11:15:00", stdout=io.StringIO())
    first, second = (status_of(p) for p in payouts)
    assert (first.status, first.provider_id) == ("submitted", None)
    assert second.provider_id == "po_1"  # the next payout in the run went through
    summary = run("submit_payouts", "--as-of", "2025-02-02T12:15:00")
    assert (summary["accepted"], summary["unanswered"]) == (1, 0)
    assert status_of(payouts[0]).provider_id == "po_2"
    assert set(provider.payments.values()) == {1}


def test_it_submits_nothing_twice_on_a_rerun(payouts, provider):
    run("submit_payouts", "--as-of", "2025-02-02T11:15:00")
    again = run("submit_payouts", "--as-of", "2025-02-02T12:15:00")
    assert (again["accepted"], again["paid"], again["failed"], again["unanswered"]) == (0, 0, 0, 0)
    assert len(posts(provider)) == 2


def test_it_records_a_payout_the_provider_pays_at_once_or_refuses(payouts, provider):
    provider.answer_status = "paid"
    refused = payouts[1]
    accept = provider.create

    def create(handler, payload):
        if payload["reference"] == f"payout-{refused.pk}":
            payload["destination"] = "owner-refused"  # the provider answers 422 for this one
        return accept(handler, payload)

    provider.create = create
    summary = run("submit_payouts", "--as-of", "2025-02-02T11:15:00")
    assert (summary["paid"], summary["failed"]) == (1, 1)
    paid, failed = (status_of(p) for p in payouts)
    assert (paid.status, paid.reference) == ("paid", "po_1")
    assert failed.status == "failed" and "unknown destination" in failed.reason


def test_it_stops_at_a_refused_key_and_never_shows_the_key(payouts, provider, settings):
    settings.BILLING_PAYOUT_PROVIDER_KEY = "wrong-key-1f2e3d4c5b6a"
    with pytest.raises(CommandError) as raised:
        call_command("submit_payouts", "--as-of", "2025-02-02T11:15:00", stdout=io.StringIO())
    assert "refused our key" in str(raised.value)
    assert "wrong-key-1f2e3d4c5b6a" not in str(raised.value)
    assert len(posts(provider)) == 1  # the second payout was not tried with a key known to be refused
    assert {(status_of(p).status, p.provider_id) for p in payouts} == {("submitted", None)}
    assert KEY not in "".join(p.last_error for p in payouts)


def test_it_keeps_a_paid_payout_without_paid_at_or_reference_out_of_the_database(payouts):
    with pytest.raises(IntegrityError), transaction.atomic():
        Payout.objects.filter(pk=payouts[0].pk).update(status="paid", reference="")
    with pytest.raises(IntegrityError), transaction.atomic():
        Payout.objects.filter(pk=payouts[0].pk).update(status="failed", reason="")


def action(client, name: str, payouts: list[Payout], **fields):
    data = {"action": name, "_selected_action": [p.pk for p in payouts], **fields}
    return client.post("/admin/billing/payout/", data)


def test_it_marks_payouts_paid_from_the_admin_with_a_reference_and_audits_it(payouts, admin_client):
    form = action(admin_client, "mark_paid", payouts[:1])
    assert form.status_code == 200
    assert "Mark payouts paid" in form.content.decode() and 'name="reference"' in form.content.decode()
    missing = action(admin_client, "mark_paid", payouts[:1], apply="1", reference="")
    assert missing.status_code == 200 and status_of(payouts[0]).status == "pending"
    done = action(admin_client, "mark_paid", payouts[:1], apply="1", reference="CHK-1042")
    assert done.status_code == 302
    paid = status_of(payouts[0])
    assert (paid.status, paid.reference) == ("paid", "CHK-1042") and paid.paid_at is not None
    entry = AuditEntry.objects.get(object_type="payout", object_id=str(paid.pk))
    assert entry.actor.username == "admin"
    assert entry.changes["status"] == ["pending", "paid"] and entry.changes["reference"] == ["", "CHK-1042"]


def test_it_marks_a_submitted_payout_failed_with_the_reason(payouts, admin_client, provider):
    run("submit_payouts", "--as-of", "2025-02-02T11:15:00")
    page = action(admin_client, "mark_failed", payouts[:1]).content.decode()
    assert "check there first" in page  # warned: the provider may have the payout
    action(admin_client, "mark_failed", payouts[:1], apply="1", reason="Bank returned the transfer")
    failed = status_of(payouts[0])
    assert (failed.status, failed.reason) == ("failed", "Bank returned the transfer")
    provider.settle(f"payout-{failed.pk}", "paid")  # it went out after all
    summary = run("reconcile_payouts", "--as-of", "2025-02-03T10:30:00")
    assert summary["disagreements"] == [f"payout {failed.pk}: failed here, paid at provider"]
    assert (summary["paid"], summary["still_submitted"]) == (0, 1)
    assert status_of(payouts[0]).status == "failed"  # staff's word stands until staff change it


def test_it_refuses_settling_to_staff_without_the_permission(payouts, client):
    staff = User.objects.create_user("viewer", password="pw-123456789", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_payout"))
    client.force_login(staff)
    page = client.get("/admin/billing/payout/").content.decode()
    assert "mark_paid" not in page
    action(client, "mark_paid", payouts[:1], apply="1", reference="CHK-1")
    assert status_of(payouts[0]).status == "pending"
    assert not AuditEntry.objects.filter(object_type="payout").exists()
    staff.user_permissions.add(Permission.objects.get(codename="settle_payout"))
    action(client, "mark_paid", payouts[:1], apply="1", reference="CHK-1")
    assert status_of(payouts[0]).status == "paid"


def test_it_reports_a_provider_url_without_a_key_or_with_a_private_address_in_the_system_check(settings):
    settings.BILLING_PAYOUT_PROVIDER_URL = "http://10.0.0.8/payouts"
    settings.BILLING_PAYOUT_PROVIDER_KEY = ""
    with pytest.raises(SystemCheckError) as raised:
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    assert "billing.E001" in str(raised.value) and "billing.E002" in str(raised.value)
