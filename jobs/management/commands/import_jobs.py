import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from jobs.api.bodies import BodyError, handler_form_data
from jobs.catalog.bulk import (
    BATCH,
    DefinitionsUnreadable,
    JobDefinitionError,
    job_from_definition,
    jobs_create_many,
    named_once,
    read_file,
)
from jobs.catalog.links import LinksInvalid, job_links_add, links_split, windows_create
from jobs.catalog.portable import HANDLER_FIELDS, handler_definition
from jobs.forms import WebhookHandlerAdminForm
from jobs.models import WebhookHandler
from jobs.permissions.audit import audit_record

HANDLER_FILE_FIELDS = {*HANDLER_FIELDS, "secret_from_env", "extra_headers_from_env"}


class Invalid(CommandError):
    """Some definitions are invalid: nothing is written (the transaction rolls back)."""


class Command(BaseCommand):
    help = (
        "Create jobs (and webhook handlers) from a file: what export_jobs writes "
        '({"webhook_handlers": [...], "jobs": [...]}), a JSON array of job objects, or JSON Lines, '
        'with Job fields (e.g. {"name": "nightly", "command": "clearsessions", "cron_expression": "0 2 * * *"}). '
        "Every definition is checked first, as the admin form checks it (the command must be on the "
        "allow-list, its config only the options it declares, a handler's URL must pass the outbound "
        "guard); nothing is written if one is invalid. A handler's secret and header values are read "
        "from the environment variables the file names. Jobs, handlers and blackout windows whose name "
        "exists are left as they are, links included; a new job gets the jobs it waits for "
        "(waits_for) and its operator groups once every job of the file exists "
        '(docs/operations.md, "Job definitions as files").'
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="The file to read ('-' for standard input).")

    def handle(self, *args, path: str, **options) -> None:
        text = sys.stdin.read() if path == "-" else self._read(path)
        try:
            handler_definitions, definitions, window_definitions = read_file(text)
        except DefinitionsUnreadable as exc:
            raise CommandError(f"{path}: {exc}") from None
        # One transaction: handlers are saved before the jobs that name them are checked, jobs
        # before the links that name them, and an invalid job or link undoes them all.
        with transaction.atomic():
            handlers_created = self._handlers(handler_definitions)
            jobs, links = self._checked_jobs(definitions)
            created: set[str] = set()
            with tqdm(total=len(jobs), desc="creating", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
                for start in range(0, len(jobs), BATCH):
                    created.update(job.name for job in jobs_create_many(jobs[start : start + BATCH]))
                    bar.update(len(jobs[start : start + BATCH]))
            try:
                # A job that existed keeps its links, as it keeps its fields.
                links_added = job_links_add({name: links[name] for name in links if name in created})
                windows_created, windows_existed = windows_create(window_definitions)
            except LinksInvalid as exc:
                _refuse(exc.errors)
        if options["verbosity"] >= 1:
            said = [f"{len(created)} created, {len(jobs) - len(created)} already existed"]
            if handler_definitions:
                said.append(f"{handlers_created} webhook handler(s) created")
            if links_added:
                said.append(f"{links_added} link(s) to upstream jobs and operator groups added")
            if window_definitions:
                said.append(f"{windows_created} blackout window(s) created, {windows_existed} already existed")
            self.stdout.write(self.style.SUCCESS("; ".join(said)))

    def _checked_jobs(self, definitions: list[dict]) -> tuple[list, dict[str, dict[str, list[str]]]]:
        """The file's jobs, validated and unsaved, and each one's links by job name."""
        named = {d["webhook_handler"] for d in definitions if isinstance(d.get("webhook_handler"), str)}
        handlers = {handler.name: handler for handler in WebhookHandler.objects.filter(name__in=named)}
        jobs, links, errors = [], {}, []
        for definition in tqdm(definitions, desc="checking", file=sys.stderr, disable=not sys.stderr.isatty()):
            try:
                fields, job_links = links_split(definition)
                jobs.append(job_from_definition(fields, handlers))
            except JobDefinitionError as exc:
                errors.append(str(exc))
                continue
            except (TypeError, ValueError, RecursionError) as exc:  # a value Job() cannot take
                errors.append(f"{definition.get('name', '?')}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            if job_links:
                links[jobs[-1].name] = job_links
        seen: set[str] = set()
        errors += [f"{job.name}: named twice in the file" for job in jobs if job.name in seen or seen.add(job.name)]
        _refuse(errors)
        return jobs, links

    def _handlers(self, definitions: list[dict]) -> int:
        """Create the file's handlers that do not exist yet, through the admin's handler form."""
        existing = set(WebhookHandler.objects.values_list("name", flat=True))
        forms, errors = [], []
        for name, definition in named_once(definitions, "webhook handler", errors):
            if name in existing:
                continue
            try:
                form = WebhookHandlerAdminForm(data=_handler_data(name, definition))
            except BodyError as exc:
                reasons = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.fields.items())
                errors.append(f"webhook handler {name}: {reasons or exc}")
                continue
            if not form.is_valid():
                reasons = "; ".join(f"{_file_field(f)}: {' '.join(m)}" for f, m in form.errors.items())
                errors.append(f"webhook handler {name}: {reasons}")
            forms.append(form)
        _refuse(errors)
        for form in forms:
            handler = form.save()
            audit_record(actor=None, action="create", instance=handler, fields=form.audited_fields)
        return len(forms)

    def _read(self, path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc


def _handler_data(name: str, definition: dict) -> dict:
    """The handler form's data for a file's handler; secrets from the variables it names. Raises
    BodyError naming the field or the variable (never a value)."""
    unknown = sorted(set(definition) - HANDLER_FILE_FIELDS)
    if unknown:
        raise BodyError("unknown field(s)", {field[:60]: ["Unknown field."] for field in unknown[:10]})
    body = {field: value for field, value in definition.items() if field in HANDLER_FIELDS}
    if "secret_from_env" in definition:
        body["secret"] = _variable(definition["secret_from_env"], "secret_from_env")
    variables = definition.get("extra_headers_from_env") or {}
    if not isinstance(variables, dict):
        raise BodyError("wrong type", {"extra_headers_from_env": ["an object of header names and variable names"]})
    body["extra_headers"] = {
        header: _variable(var, f"extra_headers_from_env {header}") for header, var in variables.items()
    }
    return handler_form_data(body, {**handler_definition(WebhookHandler()), "extra_headers": {}})


def _variable(variable, field: str) -> str:
    if not isinstance(variable, str) or not variable:
        raise BodyError("wrong type", {field: ["must name an environment variable"]})
    value = os.environ.get(variable)
    if not value:
        raise BodyError("missing secret", {field: [f"the environment variable {variable[:100]} is not set"]})
    return value


def _file_field(form_field: str) -> str:
    return {"new_secret": "secret_from_env"}.get(form_field, form_field)


def _refuse(errors: list[str]) -> None:
    if errors:
        shown = "\n".join(errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise Invalid(f"{len(errors)} invalid definition(s), nothing imported:\n{shown}{more}")
