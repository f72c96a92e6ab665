"""The embedded demo's stand-ins for Stripe and the API providers, served by Cronhouse itself
under /demo/ (config/settings.py, "The embedded demo's stand-ins"; docs/accounts.md).

They answer only while ``EMBEDDED_DEMO_SERVICES`` is on (404 otherwise) and only to the keys the
demo settings give the jobs. The Stripe stand-in speaks the endpoints sync-stripe and
process-account-deletions use (list with ``limit`` / ``starting_after``, retrieve, cancel) with a
fixed set of subscriptions that ``accounts.demo`` links to the demo's accounts: one Stripe moved
on, one it ended, one still trialing, one whose "created" webhook was missed, one for a customer
Cronhouse does not know. It keeps no state: a cancel is answered, not remembered.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

# What each demo provider answers: one in credit, one low, one out of credit.
PROVIDER_ANSWERS = {
    "demo_ai": (200, {"balance": 840.0, "currency": "USD"}),
    "demo_sms": (200, {"balance": 12.5, "currency": "USD"}),
    "demo_maps": (402, {"error": "payment required: the prepaid balance is spent"}),
}
STRIPE_PAGE_MAX = 100


def _enabled() -> None:
    if not settings.EMBEDDED_DEMO_SERVICES:
        raise Http404("the demo's stand-ins are served only by the embedded demo")


def _bearer_is(request, key: str) -> bool:
    return hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {key}")


@require_GET
def provider_balance(request, name: str):
    _enabled()
    provider = next((p for p in settings.ACCOUNTS_CREDIT_PROVIDERS if p["name"] == name), None)
    if provider is None or name not in PROVIDER_ANSWERS:
        raise Http404("no such demo provider")
    if not _bearer_is(request, provider["key"]):
        return JsonResponse({"error": "invalid API key"}, status=401)
    status, body = PROVIDER_ANSWERS[name]
    return JsonResponse(body, status=status)


def _stripe_refusal(request) -> JsonResponse | None:
    _enabled()
    if _bearer_is(request, settings.ACCOUNTS_STRIPE_API_KEY):
        return None
    error = {"type": "invalid_request_error", "message": "Invalid API Key provided."}
    return JsonResponse({"error": error}, status=401)


def demo_stripe_subscriptions(today: datetime | None = None) -> list[dict]:
    """The stand-in's subscriptions, in id order, dated from the start of ``today`` (UTC)."""
    day = datetime.combine((today or datetime.now(UTC)).date(), time(), UTC)

    def at(days: float) -> int:
        return int((day + timedelta(days=days)).timestamp())

    rows = [
        ("sub_demo_1", "cus_demo_1", "price_demo_starter", "active", {"current_period_end": at(20)}),
        ("sub_demo_2", "cus_demo_2", "price_demo_pro", "canceled", {"canceled_at": at(-3), "ended_at": at(-1)}),
        ("sub_demo_3", "cus_demo_3", "price_demo_business", "trialing", {"trial_end": at(5)}),
        ("sub_demo_4", "cus_demo_4", "price_demo_starter", "active", {"current_period_end": at(12)}),
        ("sub_demo_5", "cus_demo_unknown", "price_demo_pro", "active", {"current_period_end": at(9)}),
    ]
    return [_subscription(*row, created=at(-60)) for row in rows]


def _subscription(sub_id: str, customer: str, price: str, status: str, moments: dict, *, created: int) -> dict:
    fields = {"current_period_end": None, "trial_end": None, "canceled_at": None, "ended_at": None, **moments}
    item = {"id": f"si_{sub_id}", "object": "subscription_item", "price": {"id": price, "object": "price"}}
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at_period_end": False,
        "created": created,
        "start_date": created,
        "items": {"object": "list", "data": [item], "has_more": False, "url": "/v1/subscription_items"},
        **fields,
    }


@require_GET
def stripe_subscriptions(request):
    if refused := _stripe_refusal(request):
        return refused
    try:
        limit = min(max(int(request.GET.get("limit", "10")), 1), STRIPE_PAGE_MAX)
    except ValueError:
        limit = 10
    rows = demo_stripe_subscriptions()
    if after := request.GET.get("starting_after"):
        rows = [row for row in rows if row["id"] > after]
    return JsonResponse(
        {"object": "list", "url": "/v1/subscriptions", "data": rows[:limit], "has_more": len(rows) > limit}
    )


@csrf_exempt  # a bearer-key API like Stripe's; no cookie is read
@require_http_methods(["GET", "DELETE"])
def stripe_subscription(request, sub_id: str):
    if refused := _stripe_refusal(request):
        return refused
    found = next((row for row in demo_stripe_subscriptions() if row["id"] == sub_id), None)
    if found is None:
        message = f"No such subscription: '{sub_id[:60]}'"
        error = {"type": "invalid_request_error", "code": "resource_missing", "message": message}
        return JsonResponse({"error": error}, status=404)
    if request.method == "DELETE":
        now = int(datetime.now(UTC).timestamp())
        found.update(status="canceled", canceled_at=found["canceled_at"] or now, ended_at=found["ended_at"] or now)
    return JsonResponse(found)
