from __future__ import annotations

from django.core.management.base import CommandError

from billing.management.base import BillingJobCommand
from billing.services.disbursements import NotConfigured
from billing.services.payouts import payouts_submit


class Command(BillingJobCommand):
    help = (
        "Send pending payouts (and submitted ones whose answer was lost, under the same idempotency key) "
        "to the disbursement provider. Fails when a payout got no answer; it is sent again next run."
    )

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, help="Payouts per transaction (default BILLING_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, batch_size=None, **options) -> dict:
        try:
            summary = payouts_submit(now=now, dry_run=dry_run, batch_size=batch_size)
        except NotConfigured as exc:
            raise CommandError(str(exc)) from exc
        if summary.get("not_configured"):
            # Not configured to do its work: a warning on the run, never a plain success.
            self.warn(
                "No payout provider is configured (BILLING_PAYOUT_PROVIDER_URL is empty): "
                f"{summary['left_pending']} payout(s) left pending, nothing was sent."
            )
        elif summary.get("unanswered"):
            # Recorded before failing: the run's error names what to look at, and its retry (or the
            # next run) sends these payouts again under the same idempotency keys.
            errors = "; ".join(summary["errors"])
            raise CommandError(
                f"{summary['unanswered']} payout(s) got no answer from the provider and stay submitted "
                f"(accepted {summary['accepted']}, paid {summary['paid']}, failed {summary['failed']}): {errors}"
            )
        return summary
