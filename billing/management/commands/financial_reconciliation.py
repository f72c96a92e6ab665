from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.utils.dateparse import parse_date

from billing.management.base import BillingJobCommand
from billing.services.settlements import ProcessorError, settlements_reconcile


class Command(BillingJobCommand):
    help = "Match the processor's settlement records (API or --file CSV) to local payments and record each outcome."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--date", help="Settlement day to fetch (default: the day before --as-of).")
        parser.add_argument("--file", help="Import this CSV (reference,amount,settled_on) instead of calling the API.")
        parser.add_argument("--batch-size", type=int, help="Rows per transaction (default BILLING_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, date=None, file=None, batch_size=None, **options) -> dict:
        day = None
        if date:
            day = parse_date(date)
            if day is None:
                raise CommandError(f"--date {date!r}: expected YYYY-MM-DD.")
        try:
            if file:
                path = Path(file)
                if not path.is_file():
                    raise CommandError(f"--file {file}: no such file.")
                with path.open(newline="", encoding="utf-8") as lines:
                    return settlements_reconcile(
                        now=now, dry_run=dry_run, day=day, csv_lines=lines, batch_size=batch_size
                    )
            if not settings.BILLING_PROCESSOR_BASE_URL:
                # A job not configured to do its work succeeds with a warning, never a plain success.
                self.warn("no payment processor configured; nothing was reconciled")
            return settlements_reconcile(now=now, dry_run=dry_run, day=day, batch_size=batch_size)
        except ProcessorError as exc:
            raise CommandError(str(exc)) from exc
