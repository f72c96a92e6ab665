"""Reads: an owner's month in figures (statements, payouts, the statement PDF)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Count, Sum

from core.money import ZERO, cents

from .models import Expense, LedgerEntry, Owner, OwnerStatement, Payout, Property
from .periods import month_end, previous_month


@dataclass
class PropertyMonth:
    name: str
    units: int = 0
    rent_billed: Decimal = ZERO
    rent_collected: Decimal = ZERO
    other_income: Decimal = ZERO
    expenses: Decimal = ZERO


@dataclass
class OwnerMonth:
    """The money of one owner in one month; the arithmetic of statements and payouts."""

    owner_id: int
    name: str
    email: str
    address: str
    fee_percent: Decimal
    period: date
    opening_balance: Decimal = ZERO
    payouts: Decimal = ZERO
    properties: dict[int, PropertyMonth] = field(default_factory=dict)
    expense_lines: list[dict] = field(default_factory=list)

    def _total(self, name: str) -> Decimal:
        return sum((getattr(p, name) for p in self.properties.values()), ZERO)

    @property
    def rent_billed(self) -> Decimal:
        return self._total("rent_billed")

    @property
    def rent_collected(self) -> Decimal:
        return self._total("rent_collected")

    @property
    def other_income(self) -> Decimal:
        return self._total("other_income")

    @property
    def expenses(self) -> Decimal:
        return self._total("expenses")

    @property
    def management_fee(self) -> Decimal:
        return cents(self.rent_collected * self.fee_percent / 100)

    @property
    def net(self) -> Decimal:
        return self.rent_collected + self.other_income - self.expenses - self.management_fee

    @property
    def closing_balance(self) -> Decimal:
        return self.opening_balance + self.net - self.payouts


def owner_months(*, owner_ids: list[int], period: date) -> dict[int, OwnerMonth]:
    """Seven grouped queries for any number of owners (callers pass one batch at a time)."""
    end = month_end(period)
    months = {
        o["pk"]: OwnerMonth(
            owner_id=o["pk"],
            name=o["name"],
            email=o["email"],
            address=o["address"],
            fee_percent=o["management_fee_percent"],
            period=period,
        )
        for o in Owner.objects.filter(pk__in=owner_ids).values(
            "pk", "name", "email", "address", "management_fee_percent"
        )
    }
    properties = Property.objects.filter(owner_id__in=owner_ids).annotate(unit_count=Count("units"))
    owner_of = {}
    for prop in properties.values("pk", "name", "owner_id", "unit_count"):
        owner_of[prop["pk"]] = prop["owner_id"]
        months[prop["owner_id"]].properties[prop["pk"]] = PropertyMonth(name=prop["name"], units=prop["unit_count"])

    def place(property_id: int) -> PropertyMonth:
        return months[owner_of[property_id]].properties[property_id]

    ledger = LedgerEntry.objects.filter(lease__unit__property__owner_id__in=owner_ids).order_by()
    billed = ledger.filter(kind=LedgerEntry.Kind.CHARGE, category=LedgerEntry.Category.RENT, period=period)
    for row in billed.values("lease__unit__property_id").annotate(total=Sum("amount")):
        place(row["lease__unit__property_id"]).rent_billed = cents(row["total"])
    paid = ledger.filter(kind=LedgerEntry.Kind.PAYMENT, posted_on__gte=period, posted_on__lte=end)
    for row in paid.values("lease__unit__property_id", "category").annotate(total=Sum("amount")):
        target = place(row["lease__unit__property_id"])
        if row["category"] == LedgerEntry.Category.RENT:
            target.rent_collected -= cents(row["total"])
        else:
            target.other_income -= cents(row["total"])
    expenses = Expense.objects.filter(property__owner_id__in=owner_ids, period=period).order_by("incurred_on", "pk")
    for row in expenses.values("property_id", "description", "amount", "incurred_on"):
        place(row["property_id"]).expenses += row["amount"]
        months[owner_of[row["property_id"]]].expense_lines.append(row)
    previous = OwnerStatement.objects.filter(owner_id__in=owner_ids, period=previous_month(period))
    for owner_id, closing in previous.values_list("owner_id", "closing_balance"):
        months[owner_id].opening_balance = closing
    paid_out = (
        Payout.objects.filter(
            owner_id__in=owner_ids,
            # Failed and not-payable payouts paid nothing: their money stays in the balance.
            status__in=[Payout.Status.PENDING, Payout.Status.SUBMITTED, Payout.Status.PAID],
            created_at__date__gte=period,
            created_at__date__lte=end,
        )
        .order_by()
        .values("owner_id")
        .annotate(total=Sum("amount"))
    )
    for row in paid_out:
        months[row["owner_id"]].payouts = cents(row["total"])
    return months
