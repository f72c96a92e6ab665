"""System checks for the billing settings (``manage.py check``)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from core.http_guard import DestinationRefused, url_check


def billing_payout_provider_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    url = settings.BILLING_PAYOUT_PROVIDER_URL
    if not url:
        return []
    errors: list[checks.CheckMessage] = []
    if not settings.BILLING_PAYOUT_PROVIDER_KEY:
        errors.append(
            checks.Error(
                "BILLING_PAYOUT_PROVIDER_URL is set but BILLING_PAYOUT_PROVIDER_KEY is empty.",
                hint="submit-payouts and reconcile-payouts fail until the key is set.",
                id="billing.E001",
            )
        )
    try:
        url_check(url)
    except DestinationRefused as exc:
        errors.append(checks.Error(f"BILLING_PAYOUT_PROVIDER_URL: {exc}", id="billing.E002"))
    return errors
