"""Builders for hand-made billing data and the local payout provider (helpers to run jobs: tests/job_commands.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing.models import Lease, Owner, Property, Tenant, Unit


class Builder:
    """Small, explicit builders: every test shows the rows it relies on."""

    def __init__(self) -> None:
        self.count = 0

    def _n(self) -> int:
        self.count += 1
        return self.count

    def owner(self, **fields) -> Owner:
        n = self._n()
        fields.setdefault("management_fee_percent", Decimal("10.00"))
        return Owner.objects.create(name=fields.pop("name", f"Owner {n}"), email=f"owner{n}@example.com", **fields)

    def property(self, owner: Owner | None = None, **fields) -> Property:
        return Property.objects.create(owner=owner or self.owner(), name=fields.pop("name", f"Property {self._n()}"))

    def unit(self, prop: Property | None = None) -> Unit:
        return Unit.objects.create(property=prop or self.property(), name=f"Unit {self._n()}")

    def tenant(self, *, autopay: bool = False) -> Tenant:
        n = self._n()
        return Tenant.objects.create(name=f"Tenant {n}", email=f"tenant{n}@example.com", autopay_enrolled=autopay)

    def lease(
        self,
        *,
        rent: str = "1200.00",
        start: str = "2024-01-01",
        end: str | None = None,
        due_day: int = 1,
        unit: Unit | None = None,
        tenant: Tenant | None = None,
        status: str = Lease.Status.ACTIVE,
        autopay: bool = False,
    ) -> Lease:
        return Lease.objects.create(
            unit=unit or self.unit(),
            tenant=tenant or self.tenant(autopay=autopay),
            monthly_rent=Decimal(rent),
            start_date=date.fromisoformat(start),
            end_date=date.fromisoformat(end) if end else None,
            due_day=due_day,
            status=status,
        )

    def leases(self, count: int, **fields) -> list[Lease]:
        """Many leases cheaply: one owner, property, unit set and tenant set, bulk inserted."""
        prop = self.property()
        units = Unit.objects.bulk_create([Unit(property=prop, name=f"U{i}") for i in range(count)])
        tenants = Tenant.objects.bulk_create(
            [
                Tenant(name=f"T{i}", email=f"t{i}@example.com", autopay_enrolled=fields.get("autopay", False))
                for i in range(count)
            ]
        )
        return Lease.objects.bulk_create(
            [
                Lease(
                    unit=u,
                    tenant=t,
                    monthly_rent=Decimal(fields.get("rent", "1000.00")),
                    start_date=date.fromisoformat(fields.get("start", "2024-01-01")),
                    end_date=date.fromisoformat(fields["end"]) if fields.get("end") else None,
                    due_day=fields.get("due_day", 1),
                )
                for u, t in zip(units, tenants, strict=True)
            ]
        )


@pytest.fixture
def build(db) -> Builder:
    return Builder()


@pytest.fixture(autouse=True)
def _statements_dir(settings, tmp_path):
    settings.BILLING_STATEMENTS_DIR = tmp_path / "statements"


@pytest.fixture
def provider(settings):
    """A disbursement provider on 127.0.0.1, configured, and the guard's test-only loopback switch on."""
    from .provider_server import KEY, Provider

    server = Provider()
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True
    settings.BILLING_PAYOUT_PROVIDER_URL = server.url
    settings.BILLING_PAYOUT_PROVIDER_KEY = KEY
    settings.BILLING_PAYOUT_PROVIDER_TIMEOUT_SECONDS = 2.0
    yield server
    server.stop()
