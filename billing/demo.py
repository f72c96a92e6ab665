"""A deterministic, realistic demo data set of any size (``manage.py seed_demo``).

Everything is derived from ``random.Random(seed)`` and the as-of date, so the same call gives
the same rows. Rows are written with bulk_create in chunks, history through the billing
services themselves (charges, expenses, statements and payouts of earlier months), so the
demo's numbers add up exactly as the jobs compute them.
"""

from __future__ import annotations

import logging
import random
import zlib
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.batching import value_batches
from core.money import ZERO

from .models import (
    Expense,
    Lease,
    LedgerEntry,
    Owner,
    Payment,
    Property,
    RecurringExpense,
    SettlementRecord,
    Tenant,
    Unit,
)
from .periods import month_start, previous_month
from .services.charges import charges_generate
from .services.expenses import expenses_copy
from .services.payments import open_charges
from .services.statements import payouts_generate, statements_generate

logger = logging.getLogger(__name__)  # a line per step and batch: seeding 100,000 leases takes minutes

DEMO_DOMAIN = "demo.cronhouse.test"
SIZES = {"small": 40, "medium": 1_000, "large": 100_000}
# The order a newcomer's first look makes sense in: money first, then messages, then reports.
DEMO_JOBS = [
    "generate-charges",
    "recurring-expenses",
    "reconciliation",
    "financial-reconciliation",
    "rent-reminders",
    "overdue-notices",
    "autopay-reminders",
    "lease-expiration",
    "generate-statements",
    "generate-payouts",
    "generate-analytics",
]
CHUNK = 5_000
STREETS = ["Oak", "Maple", "Cedar", "Elm", "Birch", "Willow", "Aspen", "Harbor", "Mill", "Park", "Lake", "Hill"]
FIRST = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kira", "Liam", "Mona", "Noah"]
LAST = ["Alvarez", "Brown", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ito", "Jones", "Khan", "Lopez"]


def demo_present() -> bool:
    return Owner.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").exists()


def _at(day: date, hour: int = 6) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


def demo_seed(*, size: str, count: int | None, today: date, seed: int = 7) -> dict:
    """Build the data set (``count`` leases, or the size's number), then its history (two months
    back). Returns counts."""
    leases = count if count is not None else SIZES[size]
    rng = random.Random(seed)
    with transaction.atomic():
        lease_ids = _people_and_leases(rng, leases, today)
        _expense_templates(rng, today)
    months = [previous_month(previous_month(today)), previous_month(today), month_start(today)]
    _analyze()
    for period in months:
        logger.info("seed_demo: history of %s", period.isoformat())
        charges_generate(now=_at(period), progress=_batch_logger(f"charges {period:%Y-%m}"))
        expenses_copy(now=_at(period, 7))
        _analyze()
        _payments(rng, period, today)
        if period < month_start(today):
            # The month after: statements on the 1st, payouts on the 2nd (as the jobs would).
            nxt = month_start(period + timedelta(days=32))
            if nxt < month_start(today):
                logger.info("seed_demo: statements and payouts of %s", f"{period:%Y-%m}")
                statements_generate(now=_at(nxt, 8))
                payouts_generate(now=_at(nxt + timedelta(days=1), 10))
    _settlements(rng, today)
    _balances(lease_ids)
    _analyze()
    return {
        "leases": len(lease_ids),
        "owners": Owner.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").count(),
        "ledger_entries": LedgerEntry.objects.count(),
    }


def _batch_logger(step: str):
    done = 0

    def log(count: int) -> None:
        nonlocal done
        done += count
        logger.info("seed_demo: %s, %d leases", step, done)

    return log


def _analyze() -> None:
    """Fresh planner statistics after a bulk load: without them PostgreSQL takes the new
    tables for empty and plans nested loops over them."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _people_and_leases(rng: random.Random, count: int, today: date) -> list[int]:
    units_wanted = count + count // 10 + 1  # about one unit in eleven stands empty
    per_property, per_owner = 8, 3
    properties_wanted = -(-units_wanted // per_property)
    owners = Owner.objects.bulk_create(
        [
            Owner(
                name=f"{_name(rng)} Holdings {i + 1}",
                email=f"owner{i + 1}@{DEMO_DOMAIN}",
                address=f"{rng.randint(1, 999)} {rng.choice(STREETS)} Road",
                management_fee_percent=rng.choice([Decimal("8.00"), Decimal("10.00"), Decimal("6.50")]),
            )
            for i in range(-(-properties_wanted // per_owner))
        ],
        batch_size=CHUNK,
    )
    properties = Property.objects.bulk_create(
        [
            Property(
                owner=owners[i // per_owner],
                name=f"{rng.randint(10, 980)} {rng.choice(STREETS)} Street",
                address=f"Springfield {10000 + i}",
            )
            for i in range(properties_wanted)
        ],
        batch_size=CHUNK,
    )
    units = Unit.objects.bulk_create(
        [Unit(property=properties[i // per_property], name=f"Apt {i % per_property + 1}") for i in range(units_wanted)],
        batch_size=CHUNK,
    )
    tenants = Tenant.objects.bulk_create(
        [
            Tenant(name=_name(rng), email=f"tenant{i + 1}@{DEMO_DOMAIN}", autopay_enrolled=rng.random() < 0.4)
            for i in range(count)
        ],
        batch_size=CHUNK,
    )
    leases = [_lease(rng, units[i], tenants[i], today, i) for i in range(count)]
    # bulk_create sets the primary keys (RETURNING, on both databases): no query back by the
    # tenants' e-mail, a join PostgreSQL would plan as a nested loop over the unanalyzed tables.
    created = [lease.pk for lease in Lease.objects.bulk_create(leases, batch_size=CHUNK)]
    logger.info(
        "seed_demo: %d owners, %d properties, %d units, %d leases", len(owners), len(properties), len(units), count
    )
    return created


def _lease(rng: random.Random, unit: Unit, tenant: Tenant, today: date, i: int) -> Lease:
    rent = Decimal(rng.randrange(800, 3500, 25))
    due_day = rng.choice([1] * 7 + [5, 15, 28])
    roll = rng.random()
    status = Lease.Status.ACTIVE
    if roll < 0.05:  # starts this month: the first charge is prorated
        start = month_start(today) + timedelta(days=rng.randint(1, 20))
        end = start + timedelta(days=365)
    elif roll < 0.10:  # moves out this month: the last charge is prorated
        start = today - timedelta(days=rng.randint(300, 700))
        end = month_start(today) + timedelta(days=rng.randint(9, 26))
    elif roll < 0.14:  # ended before this month
        start = today - timedelta(days=rng.randint(400, 800))
        end = previous_month(today) + timedelta(days=rng.randint(0, 27))
        status = Lease.Status.ENDED
    elif roll < 0.17:  # signed later: not billed yet
        start = month_start(today) + timedelta(days=rng.randint(35, 60))
        end = start + timedelta(days=365)
        status = Lease.Status.DRAFT
    elif roll < 0.35:  # month to month
        start, end = today - timedelta(days=rng.randint(100, 900)), None
    else:  # a year's lease; some end within 7/14/30/60/90 days
        end = today + timedelta(days=rng.choice([6, 13, 29, 55, 88] + list(range(100, 330, 7))))
        start = end - timedelta(days=364)
    return Lease(
        unit=unit, tenant=tenant, start_date=start, end_date=end, monthly_rent=rent, due_day=due_day, status=status
    )


def _expense_templates(rng: random.Random, today: date) -> None:
    # Statistics of the rows this transaction just wrote (ANALYZE counts them): planned from an
    # empty table's, the joins below over owners and tenants ran as nested loops for many minutes.
    _analyze()
    start = previous_month(previous_month(today))
    templates = []
    for prop in Property.objects.filter(owner__email__endswith=f"@{DEMO_DOMAIN}").order_by("pk").iterator():
        templates.append(
            RecurringExpense(
                property=prop,
                description="Landscaping",
                amount=Decimal(rng.randrange(120, 400, 5)),
                day_of_month=10,
                starts_on=start,
            )
        )
        templates.append(
            RecurringExpense(
                property=prop,
                description="Building insurance",
                amount=Decimal(rng.randrange(90, 260, 5)),
                day_of_month=1,
                starts_on=start,
            )
        )
    leases = Lease.objects.filter(status=Lease.Status.ACTIVE, tenant__email__endswith=f"@{DEMO_DOMAIN}")
    for lease in leases.order_by("pk").select_related("unit")[::10]:
        templates.append(
            RecurringExpense(
                property_id=lease.unit.property_id,
                description=f"Parking - {lease.unit.name}",
                amount=Decimal("45.00"),
                day_of_month=1,
                tenant_billable=True,
                lease=lease,
                starts_on=start,
            )
        )
    RecurringExpense.objects.bulk_create(templates, batch_size=CHUNK)
    Expense.objects.bulk_create(
        [
            Expense(
                property_id=t.property_id,
                description="Plumbing repair",
                amount=Decimal(rng.randrange(150, 900, 10)),
                period=previous_month(today),
                incurred_on=previous_month(today) + timedelta(days=rng.randint(0, 25)),
            )
            for t in templates[::9]
        ],
        batch_size=CHUNK,
    )


def _payments(rng: random.Random, period: date, today: date) -> None:
    """Pay the month's charges the way tenants do: most on time, some late or partly, a few not
    at all (the tenant decides who is a late payer, so the same tenants are late every month)."""
    charges = open_charges().filter(period=period, due_date__lt=today).order_by("pk")
    rows = charges.values_list(
        "pk",
        "lease_id",
        "outstanding",
        "due_date",
        "category",
        "description",
        "lease__tenant__autopay_enrolled",
        "lease__tenant__email",
    )
    # Each charge draws from its own generator, seeded by what the charge is rather than its id
    # or its place in the list: the order the database inserted the charges in may differ.
    base = rng.getrandbits(64)
    last = paid = 0
    while batch := list(rows.filter(pk__gt=last)[:CHUNK]):
        last = batch[-1][0]
        paid += len(batch)
        logger.info("seed_demo: payments %s, %d charges", f"{period:%Y-%m}", paid)
        plans = [
            _payment_plan(random.Random(f"{base}:{row[7]}:{row[3]}:{row[4]}:{row[5]}"), row, today) for row in batch
        ]
        plans = [p for p in plans if p is not None]
        payments = Payment.objects.bulk_create([p[0] for p in plans], batch_size=CHUNK)
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(
                    lease_id=payment.lease_id,
                    kind=LedgerEntry.Kind.PAYMENT,
                    category=category,
                    description=f"Payment - {description}"[:200],
                    amount=-payment.amount,
                    period=month_start(payment.received_on),
                    posted_on=payment.received_on,
                    applies_to_id=charge_id,
                    payment=payment,
                )
                for payment, (_, charge_id, category, description) in zip(payments, plans, strict=True)
            ],
            batch_size=CHUNK,
        )


def _payment_plan(rng: random.Random, row, today: date):
    charge_id, lease_id, outstanding, due, category, description, autopay, email = row
    kind = zlib.crc32(email.encode()) % 25  # not the id: ids differ between databases
    if kind == 0:  # never pays
        return None
    if kind in (1, 2):  # pays late, and only part
        day, amount = due + timedelta(days=rng.randint(8, 20)), (outstanding / 2).quantize(Decimal("0.01"))
    elif kind == 3:  # pays late in full
        day, amount = due + timedelta(days=rng.randint(3, 12)), outstanding
    else:
        day, amount = due - timedelta(days=0 if autopay else rng.randint(0, 3)), outstanding
    if day >= today or amount <= 0:
        return None
    method = (
        Payment.Method.AUTOPAY
        if autopay
        else rng.choice([Payment.Method.CARD, Payment.Method.ACH, Payment.Method.CHECK])
    )
    reference = None if method == Payment.Method.CHECK else f"demo-{charge_id}-{day:%Y%m%d}"
    payment = Payment(lease_id=lease_id, amount=amount, received_on=day, method=method, processor_reference=reference)
    return payment, charge_id, category, description


def _settlements(rng: random.Random, today: date) -> None:
    """The processor settled most card/ACH payments of the last month, one with another amount,
    and reports one reference nobody here knows; a few recent ones are still missing."""
    payments = Payment.objects.filter(processor_reference__isnull=False)
    i = 0  # position among all payments: which are missing or differ does not depend on CHUNK
    for page in value_batches(payments, "processor_reference", "amount", "received_on", size=CHUNK):
        records = []
        for row in page:
            reference, amount, day = row["processor_reference"], row["amount"], row["received_on"]
            if not (i % 17 == 5 and day >= today - timedelta(days=10)):  # else missing at the processor
                settled = amount + (Decimal("1.00") if i % 29 == 7 else ZERO)
                records.append(_record(reference, settled, day + timedelta(days=1)))
            i += 1
        SettlementRecord.objects.bulk_create(records, ignore_conflicts=True)  # one page, one commit
        logger.info("seed_demo: settlements, %d payments", i)
    unknown = _record("unknown-ref-1", Decimal("99.00"), today - timedelta(days=2))
    SettlementRecord.objects.bulk_create([unknown], ignore_conflicts=True)


def _record(reference: str, amount: Decimal, day: date) -> SettlementRecord:
    return SettlementRecord(
        processor_reference=reference,
        amount=amount,
        settled_on=day,
        source=SettlementRecord.Source.FILE,
        raw={"reference": reference, "amount": str(amount), "settled_on": day.isoformat()},
        imported_at=_at(day, 12),
    )


def _balances(lease_ids: list[int]) -> None:
    """Balances from the ledger, then two deliberately wrong ones for reconciliation to fix."""
    total = LedgerEntry.objects.filter(lease=OuterRef("pk")).order_by().values("lease").annotate(s=Sum("amount"))
    summed = Coalesce(
        Subquery(total.values("s")), Value(ZERO), output_field=DecimalField(max_digits=12, decimal_places=2)
    )
    for start in range(0, len(lease_ids), CHUNK):
        Lease.objects.filter(pk__in=lease_ids[start : start + CHUNK]).update(balance=summed)
        logger.info("seed_demo: balances, %d leases", min(start + CHUNK, len(lease_ids)))
    for pk in lease_ids[3:5]:
        Lease.objects.filter(pk=pk).update(balance=summed + Decimal("25.00"))
