"""Billing tables, one module per concern; import them from here."""

from .analytics import DailySnapshot
from .expenses import Expense, RecurringExpense, TenantInvoice
from .leases import Lease, Owner, Property, Tenant, Unit
from .ledger import BalanceCorrection, LedgerEntry
from .notices import BillingNotice
from .payments import Payment, SettlementMatch, SettlementRecord
from .statements import OwnerStatement, Payout
from .subscriptions import Account, Catalog, Plan, Subscription

__all__ = [
    "Account",
    "BalanceCorrection",
    "BillingNotice",
    "Catalog",
    "DailySnapshot",
    "Expense",
    "LedgerEntry",
    "Lease",
    "Owner",
    "OwnerStatement",
    "Payment",
    "Payout",
    "Plan",
    "Property",
    "RecurringExpense",
    "SettlementMatch",
    "SettlementRecord",
    "Subscription",
    "Tenant",
    "TenantInvoice",
    "Unit",
]
