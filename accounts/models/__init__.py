"""Accounts tables, one module per concern; import them from here."""

from .analytics import SubscriptionSnapshot
from .notices import SubscriptionNotice
from .subscriptions import Account, Catalog, Plan, Subscription

__all__ = [
    "Account",
    "Catalog",
    "Plan",
    "Subscription",
    "SubscriptionNotice",
    "SubscriptionSnapshot",
]
