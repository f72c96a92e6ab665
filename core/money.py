"""Money is Decimal with two places, rounded half up (away from zero), as PostgreSQL's round(),
in every app."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def cents(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def money_field_kwargs(**extra) -> dict:
    """Every amount column: exact, 10 digits before the point, 2 after."""
    return {"max_digits": 12, "decimal_places": 2, **extra}
