"""check-provider-credits: is each external API provider key still accepted, and in credit?

Per provider in ``ACCOUNTS_CREDIT_PROVIDERS`` (docs/accounts.md): one GET of its URL with
``Authorization: Bearer <key>``, through the outbound-HTTP guard, following redirects only within
the URL's origin (the key never leaves it). The answer decides:

- 401 or 403 (key refused), 402 (payment required), 429 (rate-limited, quota spent): refused;
- 2xx: healthy, unless the provider has a ``low_balance`` and the number at ``balance_field`` in
  the JSON answer is below it: low;
- no answer, an address the guard refuses, another status, or no readable balance: unchecked.

Each refused or low provider e-mails the administrators (``notifications.alerts.admins``), once per
provider, finding and day. Unchecked ones are returned for the run to report.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import requests
from django.conf import settings

from core.http_guard import DestinationRefused, guarded_request
from notifications.alerts.admins import admins_notify

HEALTHY, REFUSED, LOW, UNCHECKED = "healthy", "refused", "low_balance", "unchecked"
REFUSALS = {
    401: "refused the key (HTTP 401)",
    402: "asks for payment: out of credit (HTTP 402)",
    403: "refused the key (HTTP 403)",
    429: "rate-limits the key or its quota is spent (HTTP 429)",
}
MAX_ANSWER_BYTES = 64 * 1024


def provider_credits_check(*, now: datetime, dry_run: bool = False) -> tuple[dict, list[str]]:
    """Returns the run's summary and one message per provider that could not be checked."""
    totals = {"providers": 0, HEALTHY: 0, REFUSED: 0, LOW: 0, UNCHECKED: 0, "admin_messages_queued": 0}
    unchecked = []
    for provider in settings.ACCOUNTS_CREDIT_PROVIDERS:
        state, detail = provider_check(provider)
        totals["providers"] += 1
        totals[state] += 1
        if state == UNCHECKED:
            unchecked.append(f"provider {provider['name']} not checked: {detail}")
        elif state != HEALTHY and not dry_run:
            totals["admin_messages_queued"] += admins_notify(
                title=f"API provider {provider['name']} {detail}",
                lines=[
                    f"Provider: {provider['name']} ({urlsplit(provider['url']).netloc})",
                    f"Finding: {detail}",
                    f"Checked: {now:%Y-%m-%d %H:%M} UTC by check-provider-credits",
                ],
                dedupe_key=f"provider-credits:{provider['name']}:{state}:{now.date().isoformat()}",
            )
    return totals, unchecked


def provider_check(provider: dict) -> tuple[str, str]:
    """(state, what was found) for one provider; the key appears in neither."""
    timeout = settings.ACCOUNTS_CREDIT_PROVIDER_TIMEOUT_SECONDS
    try:
        response = guarded_request(
            "GET",
            provider["url"],
            headers={"Authorization": f"Bearer {provider['key']}", "Accept": "application/json"},
            connect_timeout=timeout,
            read_timeout=timeout,
            cross_origin_redirects=False,
            max_body_bytes=MAX_ANSWER_BYTES,
        )
    except DestinationRefused as exc:
        return UNCHECKED, f"its URL is refused by the outbound-HTTP guard: {exc}"
    except requests.RequestException as exc:
        return UNCHECKED, f"no answer ({type(exc).__name__}: {exc})"
    status = response.status_code
    if status in REFUSALS:
        return REFUSED, REFUSALS[status]
    if not 200 <= status < 300:
        return UNCHECKED, f"answered HTTP {status}"
    return _balance_judge(response, provider)


def _balance_judge(response: requests.Response, provider: dict) -> tuple[str, str]:
    low = provider.get("low_balance")
    if low in (None, ""):
        return HEALTHY, f"answered HTTP {response.status_code}"
    field = provider.get("balance_field") or "balance"
    balance = _number_at(response, field)
    try:
        threshold = Decimal(str(low))
    except InvalidOperation:
        return UNCHECKED, f"its LOW_BALANCE {low!r} is not a number"
    if balance is None:
        return UNCHECKED, f"its answer has no number at {field!r}"
    if balance < threshold:
        return LOW, f"is low on credit: balance {balance}, below {threshold}"
    return HEALTHY, f"balance {balance}"


def _number_at(response: requests.Response, field: str) -> Decimal | None:
    """The number at a dotted path (``data.total_credits``) of a JSON answer, or None."""
    try:
        value = response.json()
    except ValueError:
        return None
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
