from __future__ import annotations

from django.core.management.base import CommandError

from billing.management.base import BillingJobCommand
from billing.services.disbursements import NotConfigured, ProviderError
from billing.services.payouts import payouts_reconcile


class Command(BillingJobCommand):
    help = "Read the disbursement provider's confirmations and mark submitted payouts paid or failed."

    def run_job(self, *, now, dry_run, **options) -> dict:
        try:
            summary = payouts_reconcile(now=now, dry_run=dry_run)
        except (NotConfigured, ProviderError) as exc:
            raise CommandError(str(exc)) from exc
        if summary.get("not_configured"):
            # Not configured to do its work: a warning on the run, never a plain success.
            self.warn(
                "No payout provider is configured (BILLING_PAYOUT_PROVIDER_URL is empty): "
                f"{summary['awaiting_confirmation']} submitted payout(s) not reconciled."
            )
        return summary
