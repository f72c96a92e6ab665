"""The settings of the embedded demo's stand-ins (config/settings.py reads this plain data; the
tests apply it to a live server's address). No models, nothing imported from Django's apps."""

from __future__ import annotations

from urllib.parse import urlsplit

# Not secrets: the stand-ins (accounts.demo_services) answer these keys only, and they open
# nothing else.
DEMO_STRIPE_KEY = "demo-stripe-stand-in-key"
DEMO_PROVIDERS = ("demo_ai", "demo_sms", "demo_maps")
DEMO_LOW_BALANCE = "50"


def demo_services_settings(site_url: str, *, stripe_configured: bool, providers_configured: bool) -> dict:
    """What the embedded demo sets so sync-stripe and check-provider-credits talk to the stand-ins
    served at ``site_url`` (its own web server), and the outbound guard lets loopback through to
    that port alone. A Stripe key or providers configured already are left as they are."""
    base = site_url.rstrip("/") + "/demo"
    values: dict = {
        "EMBEDDED_DEMO_SERVICES": True,
        "JOBS_HTTP_GUARD_LOOPBACK_PORTS": frozenset({urlsplit(site_url).port or 80}),
    }
    if not stripe_configured:
        values |= {"ACCOUNTS_STRIPE_API_KEY": DEMO_STRIPE_KEY, "ACCOUNTS_STRIPE_API_BASE": f"{base}/stripe"}
    if not providers_configured:
        values["ACCOUNTS_CREDIT_PROVIDERS"] = [
            {
                "name": name,
                "url": f"{base}/providers/{name}/balance",
                "key": f"demo-provider-key-{name}",
                "low_balance": DEMO_LOW_BALANCE,
                "balance_field": "balance",
            }
            for name in DEMO_PROVIDERS
        ]
    return values
