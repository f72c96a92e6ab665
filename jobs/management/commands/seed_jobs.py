from django.conf import settings
from django.core.management.base import BaseCommand

from jobs.catalog.definitions import shipped_definitions
from jobs.catalog.seeding import job_seed


class Command(BaseCommand):
    help = (
        "Register the shipped jobs. Idempotent; never overwrites a field an admin changed. "
        "A job gated by a setting is left out while that setting is off."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--with-fixtures", action="store_true", help="Also register test-job, test-fail-job, test-sleep-job."
        )

    def handle(self, *args, with_fixtures: bool, **options) -> None:
        counts = {"created": 0, "updated": 0, "unchanged": 0, "left out": 0}
        for definition in shipped_definitions(with_fixtures=with_fixtures):
            if definition.gate and not getattr(settings, definition.gate, False):
                # A job already registered (an admin created it, or the gate was on before) is
                # left as it is too: turning a feature off never deletes or edits a job.
                counts["left out"] += 1
                if options["verbosity"] >= 1:
                    self.stdout.write(f"left out  {definition.name}: {definition.gate} is off")
                continue
            result = job_seed(definition=definition)
            counts[result] += 1
            if options["verbosity"] >= 2 or (options["verbosity"] >= 1 and result != "unchanged"):
                self.stdout.write(f"{result:9} {definition.name}")
        if options["verbosity"] >= 1:
            self.stdout.write(self.style.SUCCESS(", ".join(f"{n} {k}" for k, n in counts.items())))
