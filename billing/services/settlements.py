"""financial-reconciliation: the processor's settlement records against local payments.

Records come from the processor's HTTP API (one day, paged) or a CSV file with the columns
``reference,amount,settled_on``. Matching is set-based and once per record:
  matched               a local payment has the reference and the same amount
  amount_mismatch       a local payment has the reference, with another amount
  unknown_locally       no local payment has the reference
  missing_at_processor  a processor payment received N days ago or more has no record
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import islice
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils.dateparse import parse_date

from core.batching import statistics_refresh, value_batches
from core.http_guard import DestinationRefused, guarded_request
from core.money import cents

from ..batching import batch_size as resolve_batch_size
from ..models import Payment, SettlementMatch, SettlementRecord
from ..periods import local_date

Outcome = SettlementMatch.Outcome
CONNECT_TIMEOUT = 5.0
# A page of settlement records; a bigger answer is refused rather than read without bound.
MAX_PAGE_BYTES = 8 * 1024 * 1024


class ProcessorError(Exception):
    """The processor's API failed or answered something we cannot read."""


def processor_records(*, day: date) -> Iterator[dict]:
    """GET {base}/settlements?date=YYYY-MM-DD, following ``next_cursor`` pages.

    Expected JSON: {"settlements": [{"reference", "amount", "settled_on"}], "next_cursor": str|null}.
    Every page goes through the outbound-HTTP guard (``core.http_guard``): no loopback, private or
    metadata address, and no redirect to another origin, so the API key is sent only to the
    processor's own host.
    """
    base = settings.BILLING_PROCESSOR_BASE_URL.rstrip("/")
    headers = {"Authorization": f"Bearer {settings.BILLING_PROCESSOR_API_KEY}", "Accept": "application/json"}
    params = {"date": day.isoformat()}
    while True:
        body = _processor_page(f"{base}/settlements?{urlencode(params)}", base=base, headers=headers)
        yield from body.get("settlements", [])
        cursor = body.get("next_cursor")
        if not cursor:
            return
        params = {"date": day.isoformat(), "cursor": cursor}


def _processor_page(url: str, *, base: str, headers: dict) -> dict:
    """One page of the settlement API as JSON; ProcessorError for anything else."""
    timeout = settings.BILLING_PROCESSOR_TIMEOUT_SECONDS
    try:
        response = guarded_request(
            "GET",
            url,
            headers=headers,
            connect_timeout=min(CONNECT_TIMEOUT, timeout),
            read_timeout=timeout,
            cross_origin_redirects=False,
            max_body_bytes=MAX_PAGE_BYTES + 1,
        )
    except DestinationRefused as exc:
        raise ProcessorError(f"Settlement API {base}: refused by the outbound-HTTP guard: {exc}") from exc
    except requests.RequestException as exc:
        raise ProcessorError(f"Settlement API {base}: {exc}") from exc
    if response.is_redirect:  # only a redirect to another origin comes back unfollowed
        raise ProcessorError(
            f"Settlement API {base}: HTTP {response.status_code} redirects to another origin; not followed "
            "(the API key goes only to BILLING_PROCESSOR_BASE_URL's host). Set it to the final address."
        )
    if len(response.content) > MAX_PAGE_BYTES:
        raise ProcessorError(f"Settlement API {base}: a page over {MAX_PAGE_BYTES} bytes.")
    try:
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProcessorError(f"Settlement API {base}: {exc}") from exc
    if not isinstance(body, dict):
        raise ProcessorError(f"Settlement API {base}: the answer is not a JSON object.")
    return body


def csv_records(lines: Iterable[str]) -> Iterator[dict]:
    reader = csv.DictReader(lines)
    missing = {"reference", "amount", "settled_on"} - set(reader.fieldnames or [])
    if missing:
        raise ProcessorError(f"CSV lacks the column(s) {', '.join(sorted(missing))}.")
    yield from reader


def _record(raw: dict, *, source: str, now: datetime) -> SettlementRecord:
    try:
        amount = cents(Decimal(str(raw["amount"])))
        settled_on = parse_date(str(raw["settled_on"])[:10])
        reference = str(raw["reference"]).strip()
    except (KeyError, InvalidOperation, ValueError) as exc:
        raise ProcessorError(f"Unreadable settlement record {raw!r}: {exc}") from exc
    if not reference or settled_on is None:
        raise ProcessorError(f"Settlement record without reference or date: {raw!r}")
    return SettlementRecord(
        processor_reference=reference,
        amount=amount,
        settled_on=settled_on,
        source=source,
        raw={k: str(v) for k, v in raw.items()},
        imported_at=now,
    )


def settlement_records_store(*, records: Iterable[dict], source: str, now: datetime, size: int) -> int:
    """Store records batch by batch (one transaction each); a known reference is skipped."""
    stored = 0
    iterator = iter(records)
    while batch := list(islice(iterator, size)):
        with transaction.atomic():
            SettlementRecord.objects.bulk_create(
                [_record(r, source=source, now=now) for r in batch], ignore_conflicts=True
            )
        stored += len(batch)
    return stored


def unjudged_settlements() -> QuerySet:
    local = Payment.objects.filter(processor_reference=OuterRef("processor_reference"))
    return SettlementRecord.objects.exclude(Exists(SettlementMatch.objects.filter(settlement=OuterRef("pk")))).annotate(
        payment_id=Subquery(local.values("pk")[:1]), local_amount=Subquery(local.values("amount")[:1])
    )


def missing_payments(*, today: date) -> QuerySet:
    cutoff = today - timedelta(days=settings.BILLING_SETTLEMENT_GRACE_DAYS)
    return (
        Payment.objects.filter(processor_reference__isnull=False, received_on__lte=cutoff)
        .exclude(Exists(SettlementRecord.objects.filter(processor_reference=OuterRef("processor_reference"))))
        .exclude(Exists(SettlementMatch.objects.filter(payment=OuterRef("pk"), outcome=Outcome.MISSING_AT_PROCESSOR)))
    )


def _judge(row: dict, now: datetime) -> SettlementMatch:
    if row["payment_id"] is None:
        outcome = Outcome.UNKNOWN_LOCALLY
    elif row["local_amount"] == row["amount"]:
        outcome = Outcome.MATCHED
    else:
        outcome = Outcome.AMOUNT_MISMATCH
    return SettlementMatch(
        outcome=outcome,
        settlement_id=row["pk"],
        payment_id=row["payment_id"],
        local_amount=row["local_amount"],
        processor_amount=row["amount"],
        recorded_at=now,
    )


def settlements_match(*, now: datetime, dry_run: bool, size: int) -> dict[str, int]:
    counts = {outcome.value: 0 for outcome in Outcome}
    for rows in value_batches(unjudged_settlements(), "payment_id", "local_amount", "amount", size=size):
        matches = [_judge(row, now) for row in rows]
        for match in matches:
            counts[match.outcome] += 1
        if not dry_run:
            with transaction.atomic():
                SettlementMatch.objects.bulk_create(matches, ignore_conflicts=True)
            statistics_refresh(SettlementMatch)
    for rows in value_batches(missing_payments(today=local_date(now)), "amount", size=size):
        counts[Outcome.MISSING_AT_PROCESSOR] += len(rows)
        if not dry_run:
            with transaction.atomic():
                SettlementMatch.objects.bulk_create(
                    [
                        SettlementMatch(
                            outcome=Outcome.MISSING_AT_PROCESSOR,
                            payment_id=row["pk"],
                            local_amount=row["amount"],
                            recorded_at=now,
                        )
                        for row in rows
                    ],
                    ignore_conflicts=True,
                )
            statistics_refresh(SettlementMatch)
    return counts


def settlements_reconcile(
    *,
    now: datetime,
    dry_run: bool = False,
    day: date | None = None,
    csv_lines: Iterable[str] | None = None,
    batch_size: int | None = None,
) -> dict:
    """1. Import the day's records (API, or the CSV given). 2. Judge every unjudged record and
    every payment overdue at the processor. Dry run: reads and reports, stores nothing."""
    size = resolve_batch_size(batch_size)
    day = day or local_date(now) - timedelta(days=1)
    summary: dict = {"day": day.isoformat(), "records_read": 0, "source": None}
    if csv_lines is not None:
        records, summary["source"] = csv_records(csv_lines), SettlementRecord.Source.FILE
    elif settings.BILLING_PROCESSOR_BASE_URL:
        records, summary["source"] = processor_records(day=day), SettlementRecord.Source.API
    else:
        records = None
        summary["source"] = "none (BILLING_PROCESSOR_BASE_URL is not set)"
    if records is not None:
        if dry_run:
            summary["records_read"] = sum(1 for record in records if _record(record, source="file", now=now))
        else:
            summary["records_read"] = settlement_records_store(
                records=records, source=summary["source"], now=now, size=size
            )
    summary.update(settlements_match(now=now, dry_run=dry_run, size=size))
    return summary
