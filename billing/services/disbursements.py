"""The disbursement provider's HTTP API (docs/billing.md, "Payout provider API").

Every request goes through the outbound-HTTP guard (``core.http_guard.guarded_request``) with
``Authorization: Bearer BILLING_PAYOUT_PROVIDER_KEY``; redirects are not followed, so the key
never leaves the configured origin. Errors never carry the key (the guard's and requests'
messages hold no headers; ``redact`` masks it anyway).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.utils.dateparse import parse_datetime

from core.http_guard import DestinationRefused, guarded_request
from core.redaction import redact

# Answers that say the provider refused this payout for good (it will never pay it as sent).
REJECTED = {400, 422}
# Answers that say every further request would be refused too: stop the run.
UNUSABLE = {401, 403}


class ProviderError(Exception):
    """No definite answer: the payout may or may not have been accepted (send it again, same key)."""

    def __init__(self, message: str, *, stop: bool = False) -> None:
        super().__init__(redact(message)[:500])
        self.stop = stop


class ProviderRejected(Exception):
    """The provider refused this payout (a 400 or 422): it will not be paid."""


@dataclass
class ProviderPayout:
    """One payout as the provider reports it."""

    id: str
    status: str  # "pending", "paid" or "failed"
    reference: str = ""
    amount: Decimal | None = None
    paid_at: datetime | None = None
    failure_reason: str = ""

    @classmethod
    def from_json(cls, body: dict) -> ProviderPayout:
        try:
            status = str(body["status"])
            if status not in ("pending", "paid", "failed"):
                raise ValueError(f"unknown status {status!r}")
            return cls(
                id=str(body["id"]),
                status=status,
                reference=str(body.get("reference") or ""),
                amount=Decimal(str(body["amount"])) if body.get("amount") is not None else None,
                paid_at=parse_datetime(body["paid_at"]) if body.get("paid_at") else None,
                failure_reason=str(body.get("failure_reason") or "")[:250],
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ProviderError(f"Unreadable payout from the provider ({exc}): {str(body)[:200]}") from None


class PayoutProvider:
    def __init__(self, *, base_url: str, key: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.timeout = timeout

    def _request(self, method: str, path: str, *, headers: dict | None = None, **kwargs) -> requests.Response:
        url = f"{self.base_url}{path}"
        try:
            response = guarded_request(
                method,
                url,
                headers={"Authorization": f"Bearer {self.key}", "Accept": "application/json", **(headers or {})},
                connect_timeout=min(5.0, self.timeout),
                read_timeout=self.timeout,
                allow_redirects=False,
                max_body_bytes=1024 * 1024,
                **kwargs,
            )
        except DestinationRefused as exc:
            raise ProviderError(str(exc), stop=True) from None
        except requests.Timeout:
            raise ProviderError(f"{method} {path}: no answer within {self.timeout:g} s.") from None
        except requests.RequestException as exc:
            raise ProviderError(f"{method} {path}: {type(exc).__name__}: {exc}", stop=True) from None
        if response.status_code in UNUSABLE:
            raise ProviderError(
                f"{method} {path}: HTTP {response.status_code}: the provider refused our key.", stop=True
            )
        return response

    def payout_create(
        self, *, idempotency_key: str, amount: Decimal, currency: str, destination: str
    ) -> ProviderPayout:
        """POST /v1/payouts. The same key always gets the first answer and pays at most once."""
        response = self._request(
            "POST",
            "/v1/payouts",
            headers={"Idempotency-Key": idempotency_key},
            json={
                "amount": str(amount),
                "currency": currency,
                "destination": destination,
                "reference": idempotency_key,
            },
        )
        if response.status_code in REJECTED:
            raise ProviderRejected(f"HTTP {response.status_code}: {_detail(response)}")
        if not 200 <= response.status_code < 300:
            raise ProviderError(f"POST /v1/payouts: HTTP {response.status_code}: {_detail(response)}")
        return ProviderPayout.from_json(_json(response))

    def payouts_since(self, *, since: datetime) -> Iterator[list[ProviderPayout]]:
        """GET /v1/payouts?since=...: the payouts changed since then, one page at a time."""
        params = {"since": since.isoformat()}
        while True:
            response = self._request("GET", f"/v1/payouts?{urlencode(params)}")
            if response.status_code != 200:
                raise ProviderError(f"GET /v1/payouts: HTTP {response.status_code}: {_detail(response)}")
            body = _json(response)
            yield [ProviderPayout.from_json(item) for item in body.get("payouts") or []]
            if not body.get("next_cursor"):
                return
            params = {"since": since.isoformat(), "cursor": str(body["next_cursor"])}


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        raise ProviderError(f"The provider answered HTTP {response.status_code} with no JSON.") from None
    if not isinstance(body, dict):
        raise ProviderError("The provider answered JSON that is not an object.")
    return body


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
        text = body.get("error") or body.get("detail") or str(body)
    except (ValueError, AttributeError):
        text = response.text
    return redact(" ".join(str(text).split()))[:250] or "(no detail)"


class NotConfigured(Exception):
    """A provider URL without its key."""


def payout_provider() -> PayoutProvider | None:
    """The configured provider, or None when BILLING_PAYOUT_PROVIDER_URL is empty."""
    if not settings.BILLING_PAYOUT_PROVIDER_URL:
        return None
    if not settings.BILLING_PAYOUT_PROVIDER_KEY:
        raise NotConfigured("BILLING_PAYOUT_PROVIDER_URL is set but BILLING_PAYOUT_PROVIDER_KEY is empty.")
    return PayoutProvider(
        base_url=settings.BILLING_PAYOUT_PROVIDER_URL,
        key=settings.BILLING_PAYOUT_PROVIDER_KEY,
        timeout=settings.BILLING_PAYOUT_PROVIDER_TIMEOUT_SECONDS,
    )
