from __future__ import annotations

from django.core.management.base import CommandError

from accounts.services.stripe_sync import StripeUnavailable, stripe_subscriptions_sync
from core.http_guard import DestinationRefused
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Reconcile local subscriptions with Stripe's; create the ones whose webhook was missed."

    def run_job(self, *, now, dry_run, **options) -> dict:
        try:
            return stripe_subscriptions_sync(now=now, dry_run=dry_run)
        except DestinationRefused as exc:
            raise CommandError(f"sync-stripe: ACCOUNTS_STRIPE_API_BASE is not allowed: {exc}") from None
        except StripeUnavailable as exc:
            raise CommandError(
                f"sync-stripe: {exc}; pages already synced are kept, the next run does the rest."
            ) from None
