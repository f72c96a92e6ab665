"""What links a job to other rows, written by ``import_jobs`` once every job of its file exists
(an upstream may come later in the file, or be in the database already): the jobs each job waits
for, the operator groups it is limited to, and the blackout windows.

As for jobs and handlers, an import only adds: the links of the jobs it creates and the windows
whose name is new. A job or a window that exists is left as it is (edit it in the admin or the
API), so a file is never a way around an operator's edits.

Each row goes through the check the admin makes of it: a dependency's and a limit's own
``clean()`` (``JobDependency.clean`` refuses a circle, itself included), a window's form
(``BlackoutWindowDefinitionForm``: the model's validation, its jobs and groups by name). Every
change is audited as the system's. The caller holds the transaction: any error and it rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models

from jobs.catalog.bulk import JobDefinitionError, named_once
from jobs.catalog.portable import JOB_LINKS, WINDOW_FIELDS
from jobs.forms import BlackoutWindowDefinitionForm
from jobs.models import BlackoutWindow, Job, JobDependency, JobOperatorGroup
from jobs.permissions.audit import audit_record


class LinksInvalid(ValueError):
    """Links the file cannot have; ``errors`` names each (job or window, key, name, reason)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} invalid link(s)")
        self.errors = errors


@dataclass(frozen=True)
class JobLink:
    """One kind of row joining a job to another row named in the file (``key``)."""

    key: str
    model: type[models.Model]
    target: str  # the row's foreign key to the other row
    target_model: type[models.Model]
    missing: str  # "no job is named", "no group is named"


LINKS = (
    JobLink("waits_for", JobDependency, "upstream", Job, "no job is named"),
    JobLink("operator_groups", JobOperatorGroup, "group", Group, "no group is named"),
)


def links_split(definition: dict) -> tuple[dict, dict[str, list[str]]]:
    """A job's definition without its links, and its links (only the keys the definition has).
    Raises JobDefinitionError naming a key that is not a list of names."""
    fields = {name: value for name, value in definition.items() if name not in JOB_LINKS}
    links = {name: definition[name] for name in JOB_LINKS if name in definition}
    for name, names in links.items():
        if not isinstance(names, list) or not all(isinstance(item, str) for item in names):
            raise JobDefinitionError(f"{definition.get('name', '?')}: {name} must be a list of names")
    return fields, links


def job_links_add(links_by_job: dict[str, dict[str, list[str]]]) -> int:
    """Give each named job (one just created: it has no links yet) the links the file names, kind
    by kind; returns how many rows were added. Raises LinksInvalid (an unknown name, a circle)
    after checking them all."""
    errors: list[str] = []
    changed = 0
    for link in LINKS:
        wanted = {job: sorted(set(links[link.key])) for job, links in links_by_job.items() if link.key in links}
        if wanted:
            changed += _link_rows_add(link, wanted, errors)
    if errors:
        raise LinksInvalid(errors)
    return changed


def _link_rows_add(link: JobLink, wanted: dict[str, list[str]], errors: list[str]) -> int:
    """Resolve every name (an unknown one is an error and nothing of this kind is written), then
    add the rows one by one, each checked against those already saved: a circle shows at the row
    that closes it."""
    names = {name for names in wanted.values() for name in names}
    targets = {row.name: row for row in link.target_model.objects.filter(name__in=names)}
    jobs = {job.name: job for job in Job.objects.filter(name__in=wanted).only("pk", "name")}
    unknown = [
        f"{job}: {link.key}: {link.missing} {name[:100]!r}"
        for job, job_targets in wanted.items()
        for name in job_targets
        if name not in targets
    ]
    if unknown:
        errors += unknown
        return 0
    added = 0
    for job_name, target_names in wanted.items():
        for target_name in target_names:
            row = link.model(job=jobs[job_name], **{link.target: targets[target_name]})
            try:
                # The names are resolved and unique in the file; the row's own rule is clean()'s.
                row.full_clean(exclude=["job", link.target], validate_unique=False, validate_constraints=False)
            except ValidationError as exc:
                errors.append(f"{job_name}: {link.key} {target_name}: {' '.join(exc.messages)}")
                continue
            row.save()
            audit_record(actor=None, action="create", instance=row)
            added += 1
    return added


# A window's values a file may leave out: a new window's defaults (the form asks for every field).
WINDOW_DEFAULTS = {"kind": "once", "starts_at": "00:00", "ends_at": "00:00", "reason": "", "jobs": [], "groups": []}


def windows_create(definitions: list[dict]) -> tuple[int, int]:
    """Create the file's blackout windows whose name is new, through the window's form; returns
    (created, already existed). Raises LinksInvalid naming each window and field at fault, after
    checking them all."""
    forms, errors, skipped = [], [], 0
    named = named_once(definitions, "blackout window", errors)
    existing = set(BlackoutWindow.objects.filter(name__in=[name for name, _ in named]).values_list("name", flat=True))
    for name, definition in named:
        if name in existing:
            skipped += 1
            continue
        if problems := _window_type_problems(definition):
            errors.append(f"blackout window {name}: {'; '.join(problems)}")
            continue
        form = BlackoutWindowDefinitionForm(data={**WINDOW_DEFAULTS, **definition})
        if not form.is_valid():
            reasons = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in form.errors.items())
            errors.append(f"blackout window {name}: {reasons}")
        forms.append(form)
    if errors:
        raise LinksInvalid(errors)
    for form in forms:
        window = form.save()
        members = ("jobs", "groups")
        fields = [name for name in form.changed_data if name not in members]
        changes = {name: [[], _member_names(window, name)] for name in members}
        audit_record(actor=None, action="create", instance=window, fields=fields, changes=changes)
    return len(forms), skipped


def _member_names(window: BlackoutWindow, relation: str) -> list[str]:
    return sorted(getattr(window, relation).values_list("name", flat=True))


def _window_type_problems(definition: dict) -> list[str]:
    """Why the form could not be given these values: unknown keys, and JSON types a form would
    misread (dates and times are ISO text, jobs and groups lists of names)."""
    problems = [f"{key[:60]}: unknown field" for key in sorted(set(definition) - set(WINDOW_FIELDS))[:10]]
    for key, value in definition.items():
        if key in ("jobs", "groups"):
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                problems.append(f"{key} must be a list of names")
        elif key in WINDOW_FIELDS and not isinstance(value, str):
            problems.append(f"{key} must be text")
    return problems
