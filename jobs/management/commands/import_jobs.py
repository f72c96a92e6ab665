import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from jobs.catalog.bulk import (
    BATCH,
    DefinitionsUnreadable,
    JobDefinitionError,
    job_from_definition,
    jobs_create_many,
    read_definitions,
)


class Command(BaseCommand):
    help = (
        "Create jobs from a file: a JSON array of objects, or JSON Lines, with Job fields "
        '(e.g. {"name": "nightly", "command": "clearsessions", "cron_expression": "0 2 * * *"}). '
        "Every definition is checked first, as the admin form checks it (the command must be on the "
        "allow-list, its config only the options it declares); nothing is written if one is invalid. "
        "Jobs whose name exists are left as they are."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="The file to read ('-' for standard input).")

    def handle(self, *args, path: str, **options) -> None:
        text = sys.stdin.read() if path == "-" else self._read(path)
        try:
            definitions = read_definitions(text)
        except DefinitionsUnreadable as exc:
            raise CommandError(f"{path}: {exc}") from None
        jobs, errors = [], []
        for definition in tqdm(definitions, desc="checking", file=sys.stderr, disable=not sys.stderr.isatty()):
            try:
                jobs.append(job_from_definition(definition))
            except JobDefinitionError as exc:
                errors.append(str(exc))
            except (TypeError, ValueError, RecursionError) as exc:  # a value Job() cannot take
                errors.append(f"{definition.get('name', '?')}: {type(exc).__name__}: {str(exc)[:200]}")
        seen: set[str] = set()
        errors += [f"{job.name}: named twice in the file" for job in jobs if job.name in seen or seen.add(job.name)]
        if errors:
            shown = "\n".join(errors[:20])
            more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
            raise CommandError(f"{len(errors)} invalid definition(s), nothing imported:\n{shown}{more}")
        created = 0
        with tqdm(total=len(jobs), desc="creating", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
            for start in range(0, len(jobs), BATCH):
                created += len(jobs_create_many(jobs[start : start + BATCH]))
                bar.update(len(jobs[start : start + BATCH]))
        if options["verbosity"] >= 1:
            self.stdout.write(self.style.SUCCESS(f"{created} created, {len(jobs) - created} already existed"))

    def _read(self, path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
