"""The Stripe client of sync-stripe and process-account-deletions: the official ``stripe`` library,
through the outbound guard.

``ACCOUNTS_STRIPE_API_BASE`` points the client at another API address (``base_addresses``, as the
library documents; tests serve Stripe's list and retrieve endpoints on 127.0.0.1), and every
request goes out over the outbound guard's session (``stripe.RequestsClient(session=...)``), so
the guard checks the address it connects to and no proxy variable applies. The library retries
5xx answers (and 429s that Stripe marks retryable) ``ACCOUNTS_STRIPE_MAX_RETRIES`` times with
its own backoff.
"""

from __future__ import annotations

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.http_guard import guarded_session, url_check


def stripe_client() -> stripe.StripeClient:
    if not settings.ACCOUNTS_STRIPE_API_KEY:
        raise ImproperlyConfigured("ACCOUNTS_STRIPE_API_KEY is empty: sync-stripe has no Stripe account to read.")
    base = settings.ACCOUNTS_STRIPE_API_BASE or stripe.DEFAULT_API_BASE
    # Redirects are followed only within the API's own origin (a redirect elsewhere is returned).
    session = guarded_session(origin=url_check(base))
    http_client = stripe.RequestsClient(session=session, timeout=settings.ACCOUNTS_STRIPE_TIMEOUT_SECONDS)
    return stripe.StripeClient(
        settings.ACCOUNTS_STRIPE_API_KEY,
        base_addresses={"api": base},
        http_client=http_client,
        max_network_retries=settings.ACCOUNTS_STRIPE_MAX_RETRIES,
    )


def stripe_error_text(exc: stripe.StripeError) -> str:
    """The status and Stripe's message only: never the request (it carries the key)."""
    return f"Stripe answered {exc.http_status or 'nothing'}: {exc.user_message or exc.code or type(exc).__name__}"


def stripe_is_demo_stand_in() -> bool:
    """Whether the client talks to the embedded demo's stand-in (accounts.demo_services), not Stripe."""
    demo_base = settings.SITE_URL.rstrip("/") + "/demo/stripe"
    return bool(settings.EMBEDDED_DEMO_SERVICES) and settings.ACCOUNTS_STRIPE_API_BASE.rstrip("/") == demo_base
