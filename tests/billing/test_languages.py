"""Tenants' and owners' e-mails in their own language, else LANGUAGE_CODE."""

from __future__ import annotations

import pytest

from billing.models import Owner, Tenant
from tests.job_commands import drain, queued, run

pytestmark = pytest.mark.django_db


def test_it_writes_to_a_german_tenant_in_german_and_to_others_in_english(build, outbox, settings):
    german = build.lease(due_day=5, rent="1100.00")
    english = build.lease(due_day=5, rent="1100.00")
    Tenant.objects.filter(pk=german.tenant_id).update(language="de")
    run("generate_charges", "--as-of", "2025-02-01")
    run("rent_reminders", "--as-of", "2025-02-02T15:00:00")
    drain()

    by_recipient = {m.to[0]: m for m in outbox}
    deutsch = by_recipient[german.tenant.email]
    assert deutsch.subject == "Miete von 1100.00 $ in 3 Tagen fällig (2025-02-05)"
    assert deutsch.body.startswith(f"Hallo {german.tenant.name},\n")
    assert "Fälliger Betrag: 1100.00 $" in deutsch.body
    assert by_recipient[english.tenant.email].subject == "Rent of $1100.00 due in 3 days (2025-02-05)"
    assert {m.recipient: m.language for m in queued()} == {
        german.tenant.email: "de",
        english.tenant.email: settings.LANGUAGE_CODE,
    }


def test_it_writes_to_each_side_of_a_lease_in_their_own_language(build, outbox):
    lease = build.lease(start="2024-05-03", end="2025-05-02")
    Owner.objects.filter(pk=lease.unit.property.owner_id).update(language="de")
    run("lease_expiration", "--as-of", "2025-04-25T07:00:00")
    drain()

    subjects = {m.to[0]: m.subject for m in outbox}
    property_name = lease.unit.property.name
    assert subjects == {
        lease.tenant.email: f"Your lease at {property_name} ends in 7 days (2025-05-02)",
        lease.unit.property.owner.email: f"Mietvertrag endet in 7 Tagen: {property_name}, Einheit {lease.unit.name}",
    }
