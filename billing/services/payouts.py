"""submit-payouts, reconcile-payouts and staff settlement: a payout from pending to paid or failed.

    pending --submit-payouts--> submitted --provider or reconcile-payouts--> paid | failed
    pending | submitted | failed --staff "mark paid"--> paid
    pending | submitted --staff "mark failed"--> failed

Every transition is an UPDATE conditional on the status it leaves, whose row count is checked,
so a run and a staff action that meet change a payout once. A payout is marked ``submitted``
before its request is sent: a crash or timeout in between leaves it submitted without a
provider id, and the next submit-payouts sends it again under the same idempotency key
(``payout-<id>``), which the provider pays at most once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Min, Q, QuerySet

from core.batching import value_batches
from jobs.models import AuditEntry
from jobs.permissions.audit import audit_record, snapshot

from ..batching import batch_size as resolve_batch_size
from ..models.statements import Payout
from .disbursements import PayoutProvider, ProviderError, ProviderPayout, ProviderRejected, payout_provider

Status = Payout.Status
RESULT_FIELDS = ["status", "provider_id", "reference", "paid_at", "failed_at", "reason", "last_error"]
# Provider clocks and ours differ: ask for confirmations from a little before the oldest submission.
CLOCK_MARGIN = timedelta(hours=1)
ERRORS_KEPT = 5


def payouts_to_submit() -> QuerySet:
    """Pending payouts, and submitted ones whose answer was lost (billing_payout_to_submit_idx)."""
    return Payout.objects.filter(Q(status=Status.PENDING) | Q(status=Status.SUBMITTED, provider_id__isnull=True))


# --- submit -------------------------------------------------------------------------------


@transaction.atomic
def payouts_claim(*, ids: list[int], now: datetime) -> list[Payout]:
    """Mark the still-due payouts among ``ids`` submitted (one attempt more) and return them."""
    locked = list(
        payouts_to_submit().filter(pk__in=ids).select_for_update(skip_locked=True).values_list("pk", flat=True)
    )
    if not locked:
        return []
    payouts_to_submit().filter(pk__in=locked).update(
        status=Status.SUBMITTED, submitted_at=now, attempts=F("attempts") + 1
    )
    return list(Payout.objects.filter(pk__in=locked).order_by("pk"))


def payout_apply(payout: Payout, answer: ProviderPayout, *, now: datetime) -> None:
    """Take the provider's word for one payout (in memory; the caller saves the batch)."""
    payout.provider_id = answer.id
    payout.last_error = ""
    if answer.status == "paid":
        payout.status, payout.reference, payout.paid_at = Status.PAID, answer.id, answer.paid_at or now
    elif answer.status == "failed":
        payout.status, payout.failed_at = Status.FAILED, now
        payout.reason = f"The provider reports it failed: {answer.failure_reason or 'no reason given'}"[:300]


def payouts_record(payouts: list[Payout]) -> int:
    """One UPDATE for the batch, only of payouts still submitted (a staff settlement wins)."""
    if not payouts:
        return 0
    with transaction.atomic():
        return Payout.objects.filter(status=Status.SUBMITTED).bulk_update(payouts, RESULT_FIELDS)


def _send(provider: PayoutProvider, payout: Payout, *, now: datetime) -> str:
    """Send one payout; returns its outcome: accepted, paid, failed or unanswered."""
    try:
        answer = provider.payout_create(
            idempotency_key=payout.idempotency_key,
            amount=payout.amount,
            currency=settings.BILLING_PAYOUT_CURRENCY,
            destination=f"owner-{payout.owner_id}",
        )
    except ProviderRejected as exc:
        payout.status, payout.failed_at, payout.reason = Status.FAILED, now, f"Refused by the provider: {exc}"[:300]
        return "failed"
    if answer.reference and answer.reference != payout.idempotency_key:
        raise ProviderError(f"The provider answered for {answer.reference!r}, not {payout.idempotency_key!r}.")
    payout_apply(payout, answer, now=now)
    return {Status.PAID: "paid", Status.FAILED: "failed"}.get(payout.status, "accepted")


def payouts_send(*, provider: PayoutProvider, payouts: list[Payout], now: datetime, summary: dict) -> bool:
    """Send a claimed batch and record it; False when the provider cannot be used any more."""
    usable = True
    for payout in payouts:
        if not usable:
            payout.last_error = "Not sent: the run stopped at an earlier provider error; sent again next run."
            summary["unanswered"] += 1
            continue
        try:
            summary[_send(provider, payout, now=now)] += 1
        except ProviderError as exc:
            payout.last_error = str(exc)
            summary["unanswered"] += 1
            if len(summary["errors"]) < ERRORS_KEPT:
                summary["errors"].append(f"payout {payout.pk}: {exc}")
            usable = not exc.stop
    summary["changed_meanwhile"] += len(payouts) - payouts_record(payouts)
    return usable


def payouts_submit(*, now: datetime, dry_run: bool = False, batch_size: int | None = None) -> dict:
    """Send every pending payout (and every submitted one whose answer was lost) to the provider.

    Summary: accepted (awaiting confirmation), paid, failed, unanswered (sent again next run).
    Without a provider: {"not_configured": true, "left_pending": N} and nothing changes.
    """
    provider = payout_provider()
    due = payouts_to_submit()
    if provider is None:
        return {"not_configured": True, "left_pending": due.count()}
    if dry_run:
        return {"to_submit": due.count()}
    summary = {"accepted": 0, "paid": 0, "failed": 0, "unanswered": 0, "changed_meanwhile": 0, "errors": []}
    for rows in value_batches(due, size=resolve_batch_size(batch_size)):
        payouts = payouts_claim(ids=[row["pk"] for row in rows], now=now)
        if not payouts_send(provider=provider, payouts=payouts, now=now, summary=summary):
            break
    return summary


# --- reconcile ----------------------------------------------------------------------------


def _payout_id(reference: str) -> int | None:
    prefix, _, number = reference.partition("-")
    return int(number) if prefix == "payout" and number.isdigit() else None


def payouts_confirm(*, page: list[ProviderPayout], now: datetime, dry_run: bool, summary: dict) -> None:
    """Settle the submitted payouts a page of confirmations names: one read, one write.

    A payout already settled here (by staff) that the provider settled the other way is listed
    under ``disagreements``: money went out that the books say did not, or the reverse.
    """
    by_id = {pk: item for item in page if (pk := _payout_id(item.reference)) is not None}
    summary["unknown_references"] += len(page) - len(by_id)
    changed = []
    for payout in Payout.objects.filter(pk__in=list(by_id)).order_by("pk"):
        answer = by_id[payout.pk]
        if payout.status != Status.SUBMITTED:
            if {payout.status, answer.status} == {Status.PAID, Status.FAILED}:
                summary["disagreements"].append(
                    f"payout {payout.pk}: {payout.status} here, {answer.status} at provider"
                )
            continue
        if answer.amount is not None and answer.amount != payout.amount:
            payout.last_error = f"The provider reports {answer.amount}, not {payout.amount}: not settled."[:500]
            summary["amount_mismatch"] += 1
        else:
            payout_apply(payout, answer, now=now)
            summary[{Status.PAID: "paid", Status.FAILED: "failed"}.get(payout.status, "still_submitted")] += 1
        changed.append(payout)
    if not dry_run:
        summary["changed_meanwhile"] += len(changed) - payouts_record(changed)


def payouts_reconcile(*, now: datetime, dry_run: bool = False) -> dict:
    """Read the provider's confirmations since the oldest submitted payout and settle each
    submitted payout they name: paid, failed, or still pending at the provider."""
    provider = payout_provider()
    submitted = Payout.objects.filter(status=Status.SUBMITTED)
    if provider is None:
        return {"not_configured": True, "awaiting_confirmation": submitted.count()}
    summary = {
        "confirmations_read": 0,
        "paid": 0,
        "failed": 0,
        "still_submitted": 0,
        "amount_mismatch": 0,
        "unknown_references": 0,
        "changed_meanwhile": 0,
        "disagreements": [],
    }
    oldest = submitted.aggregate(oldest=Min("submitted_at"))["oldest"]
    if oldest is None:
        return summary
    for page in provider.payouts_since(since=oldest - CLOCK_MARGIN):
        summary["confirmations_read"] += len(page)
        payouts_confirm(page=page, now=now, dry_run=dry_run, summary=summary)
    return summary


# --- staff settlement ---------------------------------------------------------------------

SETTLE_FROM = {
    Status.PAID: (Status.PENDING, Status.SUBMITTED, Status.FAILED),
    Status.FAILED: (Status.PENDING, Status.SUBMITTED),
}


@transaction.atomic
def payout_settle(
    *, payout: Payout, outcome: str, reference: str = "", reason: str = "", actor, now: datetime, address: str = ""
) -> bool:
    """Mark one payout paid (with the reference that proves it) or failed (with the reason), by
    hand; audited. False when its status no longer allows it (a run or a colleague was first)."""
    fields = {"status": outcome, "last_error": ""}
    if outcome == Status.PAID:
        if not reference.strip():
            raise ValueError("A paid payout needs the reference of the payment.")
        fields.update(reference=reference.strip()[:100], paid_at=now)
    elif outcome == Status.FAILED:
        if not reason.strip():
            raise ValueError("A failed payout needs the reason.")
        fields.update(reason=reason.strip()[:300], failed_at=now)
        if reference.strip():
            fields["reference"] = reference.strip()[:100]
    else:
        raise ValueError(f"Payouts are settled as paid or failed, not {outcome!r}.")
    names = [name for name in ("status", "reference", "reason", "paid_at", "failed_at") if name in fields]
    before = snapshot(payout, names)
    if Payout.objects.filter(pk=payout.pk, status__in=SETTLE_FROM[outcome]).update(**fields) != 1:
        return False
    payout.refresh_from_db()
    audit_record(
        actor=actor, action=AuditEntry.Action.UPDATE, instance=payout, before=before, fields=names, address=address
    )
    return True
