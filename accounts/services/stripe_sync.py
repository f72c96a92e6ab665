"""sync-stripe: local subscriptions follow Stripe's, and subscriptions whose "created" webhook
never arrived get their local row.

1. Stripe's subscriptions are listed (``status=all``), a page of up to 100 at a time (the
   library's ``next_page()`` follows ``has_more`` / ``starting_after``). Per page, in one
   transaction: the local rows with
   those Stripe ids are read in one query; the ones whose status or dates differ are updated
   (``bulk_update``), and subscriptions with no local row are created (``bulk_create`` with
   ``ignore_conflicts``: the unique ``stripe_id`` makes a concurrent run or webhook harmless)
   when their customer and price are known locally, else counted as unmatched.
2. Local rows with a Stripe id that the listing did not show are retrieved one by one (an
   anomaly, so rare); one Stripe no longer has is counted as missing.
3. Catalogs of the accounts whose subscription Stripe ended are unpublished by the catalog rule
   (``subscriptions.catalogs_unpublish``); republishing stays with expire-subscriptions.

A failure part-way (Stripe down past the retries) keeps the pages already committed; the next
run starts over and finds them in sync.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import stripe
from django.db import transaction

from ..models import Account, Plan, Subscription
from ..stripe_api import stripe_client, stripe_error_text
from .subscriptions import catalogs_unpublish

Status = Subscription.Status
PAGE = 100
STATUSES = {
    "trialing": Status.TRIAL,
    "active": Status.ACTIVE,
    "past_due": Status.ACTIVE,  # still served while Stripe retries the payment
    "canceled": Status.EXPIRED,
    "unpaid": Status.EXPIRED,
    "incomplete_expired": Status.EXPIRED,
    "paused": Status.EXPIRED,
}
SYNCED = ("status", "trial_ends_at", "current_period_end", "cancelled_at", "expired_at")


def _moment(value) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def remote_fields(remote, *, now: datetime) -> dict | None:
    """The local fields a Stripe subscription stands for; None for one that is not a
    subscription yet (``incomplete``: its first payment has not gone through)."""
    status = STATUSES.get(remote.get("status"))
    if status is None:
        return None
    if status == Status.ACTIVE and remote.get("cancel_at_period_end"):
        status = Status.CANCELLED
    period_end = remote.get("current_period_end")
    if period_end is None and remote.get("items") and remote["items"].get("data"):
        period_end = remote["items"]["data"][0].get("current_period_end")  # newer API versions
    return {
        "status": status,
        "trial_ends_at": _moment(remote.get("trial_end")),
        "current_period_end": _moment(period_end),
        "cancelled_at": _moment(remote.get("canceled_at")),
        "expired_at": (_moment(remote.get("ended_at")) or now) if status == Status.EXPIRED else None,
    }


def stripe_subscriptions_sync(*, now: datetime, dry_run: bool = False) -> dict:
    client = stripe_client()
    totals = {"seen": 0, "updated": 0, "created": 0, "unmatched": 0, "missing_at_stripe": 0, "catalogs_unpublished": 0}
    seen: set[str] = set()
    ended: list[int] = []
    try:
        listing = client.v1.subscriptions.list(params={"status": "all", "limit": PAGE})
        while True:
            # Stripe's page is the unit of work: the library's next_page() follows has_more
            # with starting_after = the page's last id.
            page = [remote.to_dict() for remote in listing.data]  # the library's documented dump
            _page_sync(page, now=now, dry_run=dry_run, totals=totals, seen=seen, ended=ended)
            if not listing.has_more:
                break
            listing = listing.next_page()
        _unlisted_check(client, now=now, dry_run=dry_run, totals=totals, seen=seen, ended=ended)
    except stripe.StripeError as exc:
        raise StripeUnavailable(stripe_error_text(exc)) from None
    if ended and not dry_run:
        with transaction.atomic():
            totals["catalogs_unpublished"] = catalogs_unpublish(lost=Subscription.objects.filter(pk__in=ended), now=now)
    return totals


class StripeUnavailable(Exception):
    pass


@transaction.atomic
def _page_sync(page: list, *, now: datetime, dry_run: bool, totals: dict, seen: set, ended: list) -> None:
    if not page:
        return
    ids = [remote["id"] for remote in page]
    seen.update(ids)
    totals["seen"] += len(page)
    local = {sub.stripe_id: sub for sub in Subscription.objects.filter(stripe_id__in=ids)}
    changed = [sub for remote in page if (sub := _apply(remote, local.get(remote["id"]), now, ended)) is not None]
    new = [remote for remote in page if remote["id"] not in local]
    created, unmatched = _new_rows(new, now=now)
    totals["updated"] += len(changed)
    totals["unmatched"] += unmatched
    totals["created"] += len(created)
    if not dry_run:
        Subscription.objects.bulk_update(changed, fields=SYNCED)
        Subscription.objects.bulk_create(created, ignore_conflicts=True)


def _apply(remote, sub: Subscription | None, now: datetime, ended: list) -> Subscription | None:
    """``sub`` with Stripe's values when any differs (else None)."""
    if sub is None or (wanted := remote_fields(remote, now=now)) is None:
        return None
    if sub.status == Status.EXPIRED and wanted["status"] == Status.EXPIRED:
        wanted["expired_at"] = sub.expired_at  # ended once; keep when
    if all(getattr(sub, name) == value for name, value in wanted.items()):
        return None
    if wanted["status"] == Status.EXPIRED and sub.status != Status.EXPIRED:
        ended.append(sub.pk)
    for name, value in wanted.items():
        setattr(sub, name, value)
    return sub


def _new_rows(remotes: Iterable, *, now: datetime) -> tuple[list[Subscription], int]:
    remotes = [r for r in remotes if remote_fields(r, now=now) is not None]
    customers = {r.get("customer") for r in remotes}
    prices = {_price(r) for r in remotes}
    accounts = dict(Account.objects.filter(stripe_customer_id__in=customers).values_list("stripe_customer_id", "pk"))
    plans = dict(Plan.objects.filter(stripe_price_id__in=prices).values_list("stripe_price_id", "pk"))
    rows, unmatched = [], 0
    for remote in remotes:
        account_id, plan_id = accounts.get(remote.get("customer")), plans.get(_price(remote))
        if account_id is None or plan_id is None:
            unmatched += 1
            continue
        started = _moment(remote.get("start_date") or remote.get("created")) or now
        rows.append(
            Subscription(
                account_id=account_id,
                plan_id=plan_id,
                stripe_id=remote["id"],
                started_at=started,
                **remote_fields(remote, now=now),
            )  # fmt: skip
        )
    return rows, unmatched


def _price(remote) -> str | None:
    items = remote.get("items") or {}
    data = items.get("data") or []
    return data[0]["price"]["id"] if data and data[0].get("price") else None


def _unlisted_check(client, *, now: datetime, dry_run: bool, totals: dict, seen: set, ended: list) -> None:
    unlisted = (
        Subscription.objects.exclude(stripe_id__isnull=True).exclude(stripe_id__in=seen).exclude(status=Status.EXPIRED)
    )
    for sub in unlisted.iterator():
        try:
            remote = client.v1.subscriptions.retrieve(sub.stripe_id).to_dict()
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
            totals["missing_at_stripe"] += 1
            continue
        changed = _apply(remote, sub, now, ended)
        if changed is not None:
            totals["updated"] += 1
            if not dry_run:
                changed.save(update_fields=SYNCED)
