"""Create many jobs at once (``manage.py import_jobs``): a hundred thousand in seconds.

Saving jobs one by one writes each one's schedule with its own queries. Here a batch is
validated as the admin form would (the model's validators and ``Job.clean``, which runs the cron
engine's checks on the schedule), then written with a handful of statements: the jobs (with their
first slot), then their schedules by ``jobs_schedules_create_many`` (the batch form of
``job_schedule_set``: the crontab / interval rows, the PeriodicTasks, the link from each job).
"""

from __future__ import annotations

import json
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from jobs.catalog.portable import JOB_FIELDS
from jobs.catalog.validation import job_full_clean
from jobs.models import Job, WebhookHandler
from jobs.models.versions import job_versions_record
from jobs.scheduling.schedules import Schedule, jobs_schedules_create_many

# The schedule is no column of the job: a definition declares it as before, in these keys.
SCHEDULE_TYPES = {
    "cron_expression": (str, "text"),
    "timezone": (str, "text"),
    "interval_seconds": (int, "a whole number"),
}

BATCH = 5000


class JobDefinitionError(ValueError):
    """A definition that cannot become a job; the message names it and the field."""


class DefinitionsUnreadable(ValueError):
    """A file that is not a list of job objects; the message says what it is instead."""


def job_from_definition(definition: dict, handlers: dict[str, WebhookHandler] | None = None) -> Job:
    """A validated, unsaved Job from a dict of its fields, checked as the admin form checks it:
    the fields' validators (bounds included), the command's place on the allow-list and its
    config (``Job.clean``). ``webhook_handler`` names a handler of ``handlers`` (by name)."""
    name = definition.get("name")
    name = name if isinstance(name, str) and name else "?"
    # A job's chosen values only (JOB_FIELDS: what export_jobs writes and the API takes), never what
    # beat and the runner write: a file that set a job's last run or its failures would show a
    # history that did not happen.
    unknown = set(definition) - set(JOB_FIELDS)
    if unknown:
        raise JobDefinitionError(f"{name}: unknown field(s) {', '.join(sorted(unknown))}")
    if wrong := [problem for field, value in definition.items() if (problem := definition_type_problem(field, value))]:
        raise JobDefinitionError(f"{name}: {'; '.join(wrong)}")
    definition = dict(definition)
    if (handler_name := definition.pop("webhook_handler", None)) is not None:
        if handler_name not in (handlers or {}):
            raise JobDefinitionError(f"{name}: webhook_handler: no webhook handler is named {handler_name[:100]!r}")
        definition["webhook_handler"] = handlers[handler_name]
    job = Job(**definition)
    try:
        # Constraints are the database's to enforce at insert (checking them here costs a query
        # each); Job.clean() already gives the readable reasons for the schedule and handler.
        # Fields the definition leaves out keep their defaults, which need no check.
        unset = [field.name for field in Job._meta.concrete_fields if field.name not in definition]
        job_full_clean(job, exclude=unset, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        reasons = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
        raise JobDefinitionError(f"{name}: {reasons}") from exc
    return job


# The JSON type each kind of field takes; null is the field's own business (full_clean).
JSON_TYPES = (
    (models.BooleanField, bool, "true or false"),
    (models.IntegerField, int, "a whole number"),
    (models.JSONField, object, "any JSON"),
    (models.Field, str, "text"),
)


def definition_type_problem(name: str, value) -> str | None:
    """Why ``value`` is the wrong JSON type for the field ``name`` (true is no number here)."""
    if value is None:
        return None
    if name in SCHEDULE_TYPES:
        kind, words = SCHEDULE_TYPES[name]
    else:
        field = Job._meta.get_field(name)
        kind, words = next((kind, words) for model_field, kind, words in JSON_TYPES if isinstance(field, model_field))
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return None
    return f"{name} must be {words}, not {json.dumps(value)[:40]}"


def named_once(definitions: list[dict], what: str, errors: list[str]) -> list[tuple[str, dict]]:
    """Each definition with its name ("?" when it has none); a name given twice adds an error
    ("<what> <name>: named twice in the file") to ``errors``."""
    named, seen = [], set()
    for definition in definitions:
        name = definition.get("name") if isinstance(definition.get("name"), str) else "?"
        if name in seen:
            errors.append(f"{what} {name}: named twice in the file")
        seen.add(name)
        named.append((name, definition))
    return named


class DefinitionsFile(NamedTuple):
    """The parts of a definitions file, each a list of objects (checked to be objects only)."""

    webhook_handlers: list[dict]
    jobs: list[dict]
    blackout_windows: list[dict]


# The keys of a definitions file, in DefinitionsFile's order.
FILE_PARTS = ("webhook_handlers", "jobs", "blackout_windows")


def read_file(text: str) -> DefinitionsFile:
    """The webhook handlers, jobs and blackout windows of a definitions file: what
    ``export_jobs`` writes (an object ``{"webhook_handlers": [...], "jobs": [...],
    "blackout_windows": [...]}``; only ``jobs`` is required), or the jobs alone as
    ``read_definitions`` reads them."""
    try:
        whole = json.loads(text)
    except (ValueError, RecursionError):
        whole = None
    if isinstance(whole, dict) and "jobs" in whole and set(whole) <= set(FILE_PARTS):
        parts = DefinitionsFile(whole.get("webhook_handlers") or [], whole["jobs"], whole.get("blackout_windows") or [])
        for part, items in zip(FILE_PARTS, parts, strict=True):
            _objects_only(items, f"{part}: ")
        return parts
    return DefinitionsFile([], read_definitions(text), [])


def _objects_only(items, where: str = "") -> None:
    if not isinstance(items, list):
        raise DefinitionsUnreadable(f"{where}not a list of objects")
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            shown = json.dumps(item)[:60] if not isinstance(item, list) else "a list"
            raise DefinitionsUnreadable(f"{where}item {number} is {shown}, not an object")


def read_definitions(text: str) -> list[dict]:
    """A JSON array of job objects, or JSON Lines (one object per line). Raises
    DefinitionsUnreadable for anything else: not JSON, nested too deeply to read, not a list of
    objects (the message names the first item that is not one)."""
    try:
        if text.lstrip().startswith("["):
            definitions = json.loads(text)
        else:
            definitions = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise DefinitionsUnreadable(f"not JSON or JSON Lines ({exc})") from None
    except RecursionError:
        raise DefinitionsUnreadable("nested too deeply to be job definitions") from None
    if not isinstance(definitions, list):
        raise DefinitionsUnreadable("not a list of job objects")
    for number, definition in enumerate(definitions, 1):
        if not isinstance(definition, dict):
            shown = json.dumps(definition)[:60] if not isinstance(definition, list) else "a list"
            raise DefinitionsUnreadable(f"item {number} is {shown}, not a job object")
    return definitions


@transaction.atomic
def jobs_create_many(jobs: list[Job]) -> list[Job]:
    """Insert new jobs and their PeriodicTasks in a few statements; returns the jobs created
    (a name that already exists is left alone, as seed_jobs would leave it)."""
    names = [job.name for job in jobs]
    existing = set(Job.objects.filter(name__in=names).values_list("name", flat=True))
    jobs = [job for job in jobs if job.name not in existing]
    if not jobs:
        return []
    now = timezone.now()
    schedules = []
    for job in jobs:
        schedules.append(Schedule(job.cron_expression, job.timezone, job.interval_seconds))
        job.schedule_reset(now)
    Job.objects.bulk_create(jobs)
    jobs_schedules_create_many(jobs, schedules)
    job_versions_record(jobs)  # each job's first version: bulk_create sends no post_save
    return jobs
