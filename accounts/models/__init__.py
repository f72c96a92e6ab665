"""Accounts tables, one module per concern; import them from here."""

from .affiliates import Affiliate, AffiliateConversion
from .analytics import SubscriptionSnapshot
from .credits import CreditBalance
from .devices import PushSubscription
from .licenses import License, LicenseWarning
from .members import Invitation, Membership, Role
from .notices import SubscriptionNotice
from .privacy import DeletionRequest, ErrorLog
from .subscriptions import Account, Catalog, Plan, Subscription

__all__ = [
    "Account",
    "Affiliate",
    "AffiliateConversion",
    "Catalog",
    "CreditBalance",
    "DeletionRequest",
    "ErrorLog",
    "Invitation",
    "License",
    "LicenseWarning",
    "Membership",
    "Plan",
    "PushSubscription",
    "Role",
    "Subscription",
    "SubscriptionNotice",
    "SubscriptionSnapshot",
]
