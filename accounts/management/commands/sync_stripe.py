from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError

from accounts.services.stripe_sync import StripeUnavailable, stripe_subscriptions_sync
from accounts.stripe_api import stripe_is_demo_stand_in
from core.http_guard import DestinationRefused
from jobs.running.command import JobCommand

NOTHING = {"seen": 0, "updated": 0, "created": 0, "unmatched": 0, "missing_at_stripe": 0, "catalogs_unpublished": 0}


class Command(JobCommand):
    help = "Reconcile local subscriptions with Stripe's; create the ones whose webhook was missed."

    def run_job(self, *, now, dry_run, **options) -> dict:
        if not settings.ACCOUNTS_STRIPE_API_KEY:
            # Said as a warning, not a success that synced nothing: no Stripe account is set up.
            self.warn("ACCOUNTS_STRIPE_API_KEY is empty: nothing was read from Stripe and nothing was synced.")
            return dict(NOTHING)
        if stripe_is_demo_stand_in():
            self.warn(
                "Stripe here is the embedded demo's stand-in (/demo/stripe on this server), not Stripe: "
                "the counts show what a sync does, on the demo's own data."
            )
        try:
            return stripe_subscriptions_sync(now=now, dry_run=dry_run)
        except DestinationRefused as exc:
            raise CommandError(f"sync-stripe: ACCOUNTS_STRIPE_API_BASE is not allowed: {exc}") from None
        except StripeUnavailable as exc:
            raise CommandError(
                f"sync-stripe: {exc}; pages already synced are kept, the next run does the rest."
            ) from None
