"""Seed a deterministic demo data set; optionally run every billing job once on it."""

from __future__ import annotations

import io

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.demo import SIZES, demo_present, demo_seed
from jobs.command import parse_as_of
from jobs.models import Job

# The order a newcomer's first look makes sense in: money first, then messages, then reports.
DEMO_JOBS = [
    "generate-charges",
    "recurring-expenses",
    "reconciliation",
    "financial-reconciliation",
    "rent-reminders",
    "overdue-notices",
    "autopay-reminders",
    "lease-expiration",
    "trial-reminders",
    "expire-subscriptions",
    "generate-statements",
    "generate-payouts",
    "generate-analytics",
]


class Command(BaseCommand):
    help = "Seed a deterministic demo data set (owners, leases in every state, payments, subscriptions). Idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--size", choices=sorted(SIZES), default="small", help="small=40, medium=1,000, large=100,000 leases."
        )
        parser.add_argument("--leases", type=int, help="Exactly this many leases (overrides --size).")
        parser.add_argument("--seed", type=int, default=7, help="Random seed: same seed, same data.")
        parser.add_argument("--as-of", help="Build the data around this date (default: today).")
        parser.add_argument("--run-jobs", action="store_true", help="Then run each billing job once through runjob.")

    def handle(self, *args, size: str, leases: int | None, seed: int, as_of: str | None, run_jobs: bool, **options):
        verbosity = options.get("verbosity", 1)
        if demo_present():
            if verbosity >= 1:
                self.stdout.write("Demo data already present; nothing seeded.")
            return
        count = leases if leases is not None else SIZES[size]
        if count < 1:
            raise CommandError("--leases must be at least 1.")
        today = parse_as_of(as_of).date() if as_of else timezone.localdate()
        counts = demo_seed(leases=count, today=today, seed=seed)
        if verbosity >= 1:
            self.stdout.write(self.style.SUCCESS("Seeded " + ", ".join(f"{v} {k}" for k, v in counts.items())))
        if run_jobs:
            self._run_jobs(as_of, verbosity)

    def _run_jobs(self, as_of: str | None, verbosity: int) -> None:
        """Each billing job once through runjob, so the demo shows real runs (and a statement PDF)."""
        present = set(Job.objects.filter(name__in=DEMO_JOBS).values_list("name", flat=True))
        outcomes = {"succeeded": 0, "failed": 0, "not registered": 0}
        for name in DEMO_JOBS:
            if name not in present:
                outcomes["not registered"] += 1
                continue
            arguments = [name] + (["--as-of", as_of] if as_of else [])
            out = self.stdout if verbosity >= 2 else io.StringIO()
            try:
                call_command("runjob", *arguments, stdout=out, stderr=out)
                outcomes["succeeded"] += 1
            except SystemExit as exit_:
                outcomes["succeeded" if not exit_.code else "failed"] += 1
                if exit_.code:
                    self.stderr.write(f"{name} did not succeed (exit {exit_.code}); see its run in the admin.")
        if verbosity >= 1:
            self.stdout.write("Billing jobs run once: " + ", ".join(f"{n} {k}" for k, n in outcomes.items() if n))
