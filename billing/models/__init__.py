"""Billing tables, one module per concern; import them from here."""

from .analytics import DailySnapshot
from .expenses import Expense, RecurringExpense, TenantInvoice
from .leases import Lease, Owner, Property, Tenant, Unit
from .ledger import BalanceCorrection, LedgerEntry
from .notices import BillingNotice
from .payments import Payment, SettlementMatch, SettlementRecord
from .statements import OwnerStatement, Payout

__all__ = [
    "BalanceCorrection",
    "BillingNotice",
    "DailySnapshot",
    "Expense",
    "LedgerEntry",
    "Lease",
    "Owner",
    "OwnerStatement",
    "Payment",
    "Payout",
    "Property",
    "RecurringExpense",
    "SettlementMatch",
    "SettlementRecord",
    "Tenant",
    "TenantInvoice",
    "Unit",
]
