"""Seed every app's deterministic demo data set; optionally run each app's demo jobs once.

An app takes part by shipping a ``demo`` module (``<app>/demo.py``) with:

- ``DEMO_JOBS``: job names to run once after seeding, in the order a newcomer reads them;
- ``demo_present() -> bool``: whether its demo rows are there already (seeding is idempotent);
- ``demo_seed(*, size, count, today, seed) -> dict[str, int]``: build the rows, return counts.

Discovered like ``job_definitions`` modules, so the jobs app names no domain app.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
from types import ModuleType

from django.apps import apps
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from jobs.models import Job
from jobs.running.command import parse_as_of

SIZES = ("small", "medium", "large")


def demo_modules(labels: list[str] | None = None) -> list[ModuleType]:
    """Each installed app's ``demo`` module (only those of ``labels`` when given), in
    INSTALLED_APPS order."""
    found = []
    for config in apps.get_app_configs():
        if labels and config.label not in labels:
            continue
        if importlib.util.find_spec(f"{config.name}.demo") is not None:
            found.append(importlib.import_module(f"{config.name}.demo"))
    return found


class Command(BaseCommand):
    help = "Seed every app's deterministic demo data set (billing: owners, leases, payments ...). Idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--size", choices=SIZES, default="small", help="small, medium or large (billing: 40, 1,000, 100,000 leases)"
        )
        parser.add_argument(
            "--count", type=int, help="Exactly this many of each app's main record (billing: leases); overrides --size."
        )
        parser.add_argument("--seed", type=int, default=7, help="Random seed: same seed, same data.")
        parser.add_argument(
            "--app", action="append", dest="apps", metavar="LABEL", help="Only this app's demo (repeatable)."
        )
        parser.add_argument("--as-of", help="Build the data around this date (default: today).")
        parser.add_argument("--run-jobs", action="store_true", help="Then run each app's demo jobs once (runjob).")

    def handle(self, *args, size: str, count: int | None, seed: int, as_of: str | None, run_jobs: bool, **options):
        verbosity, labels = options.get("verbosity", 1), options.get("apps") or []
        if count is not None and count < 1:
            raise CommandError("--count must be at least 1.")
        if unknown := sorted(set(labels) - {module.__name__.rsplit(".", 1)[0] for module in demo_modules()}):
            raise CommandError(f"No demo for {', '.join(unknown)}: apps with one are {self.demo_labels()}.")
        today = parse_as_of(as_of).date() if as_of else timezone.localdate()
        absent = [module for module in demo_modules(labels) if not module.demo_present()]
        if not absent:
            if verbosity >= 1:
                self.stdout.write("Demo data already present; nothing seeded.")
            return
        for module in absent:
            counts = module.demo_seed(size=size, count=count, today=today, seed=seed)
            if verbosity >= 1:
                self.stdout.write(self.style.SUCCESS("Seeded " + ", ".join(f"{v} {k}" for k, v in counts.items())))
        if run_jobs:
            self._run_jobs([name for module in absent for name in module.DEMO_JOBS], as_of, verbosity)

    @staticmethod
    def demo_labels() -> str:
        return ", ".join(module.__name__.rsplit(".", 1)[0] for module in demo_modules())

    def _run_jobs(self, names: list[str], as_of: str | None, verbosity: int) -> None:
        """Each demo job once through runjob, so the demo shows real runs (and a statement PDF)."""
        present = set(Job.objects.filter(name__in=names).values_list("name", flat=True))
        outcomes = {"succeeded": 0, "failed": 0, "not registered": 0}
        for name in names:
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
            self.stdout.write("Demo jobs run once: " + ", ".join(f"{n} {k}" for k, n in outcomes.items() if n))
