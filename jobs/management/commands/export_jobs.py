from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from jobs.catalog.portable import definitions_export, definitions_text


class Command(BaseCommand):
    help = (
        "Write every job and webhook handler as the JSON file import_jobs reads, for version "
        "control: the same jobs give the same text. Secrets are never written: a handler's secret "
        "and extra header values are named by the environment variable import_jobs reads them from "
        "(secret_from_env, extra_headers_from_env; docs/operations.md)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "path", nargs="?", default="-", help="The file to write ('-', the default: standard output)."
        )

    def handle(self, *args, path: str, **options) -> None:
        definitions = definitions_export()
        text = definitions_text(definitions)
        if path == "-":
            self.stdout.write(text, ending="")
            return
        try:
            Path(path).write_text(text)
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror}") from exc
        if options["verbosity"] >= 1:
            jobs, handlers = len(definitions["jobs"]), len(definitions["webhook_handlers"])
            self.stderr.write(f"{jobs} job(s) and {handlers} webhook handler(s) written to {path}")
