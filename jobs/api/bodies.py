"""A CRUD request's JSON body turned into the admin form's data: unknown fields and wrong JSON
types refused by field (a form would read ``"yes"`` as true), values the representation shows
but nobody sets (ids, links, statistics) ignored, so a client may send back what it read."""

from __future__ import annotations

import json

from jobs.catalog.bulk import definition_type_problem
from jobs.catalog.portable import HANDLER_FIELDS, JOB_FIELDS

JOB_READ_ONLY = {
    "id",
    "href",
    "schedule_description",
    "next_fire_at",
    "last_run_at",
    "last_run_status",
    "created_at",
    "updated_at",
}
HANDLER_READ_ONLY = {"id", "href", "secret_set", "created_at", "updated_at"}
HANDLER_WRITABLE = (*HANDLER_FIELDS, "extra_headers", "secret")


class BodyError(ValueError):
    """A body the form cannot be given; ``fields`` holds the reasons by field."""

    def __init__(self, message: str, fields: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.fields = fields


def _unknown(body: dict, writable, read_only: set) -> None:
    unknown = sorted(set(body) - set(writable) - read_only)
    if unknown:
        names = ", ".join(name[:60] for name in unknown[:10])
        raise BodyError(f"unknown field(s): {names}", {name[:60]: ["Unknown field."] for name in unknown[:10]})


def _form_value(value):
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def job_form_data(body: dict, base: dict) -> dict:
    """The job form's data: ``base`` (the job's definition, or a new job's defaults) with the
    body's fields over it."""
    _unknown(body, JOB_FIELDS, JOB_READ_ONLY)
    given = {name: value for name, value in body.items() if name in JOB_FIELDS}
    problems = {name: [problem] for name, value in given.items() if (problem := definition_type_problem(name, value))}
    if problems:
        raise BodyError("fields of the wrong type", problems)
    values = {**base, **given}
    if values.get("config") is None:
        values["config"] = {}
    return {name: _form_value(value) for name, value in values.items()}


# The JSON type each handler field takes; messages never repeat the value (it may be a secret).
HANDLER_TYPES = {
    "name": (str, "text"),
    "url": (str, "text"),
    "method": (str, "text"),
    "auth": (str, "text"),
    "auth_username": (str, "text"),
    "auth_header_name": (str, "text"),
    "timeout_seconds": (int, "a whole number"),
    "extra_headers": (dict, "an object of header names and text values"),
    "secret": (str, "text, or null to remove the stored secret"),
}


def handler_form_data(body: dict, base: dict) -> dict:
    """The handler form's data. ``secret``: text sets or replaces the stored secret, null or ""
    removes it, absent keeps it. ``extra_headers``: values are new values, or the mask shown by
    a read (``[redacted]``) to keep the stored one; a header left out is removed."""
    _unknown(body, HANDLER_WRITABLE, HANDLER_READ_ONLY)
    problems = {}
    for name, value in body.items():
        if name not in HANDLER_TYPES or (value is None and name == "secret"):
            continue
        kind, words = HANDLER_TYPES[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            problems[name] = [f"{name} must be {words}."]
    if problems:
        raise BodyError("fields of the wrong type", problems)
    values = {**base, **{name: value for name, value in body.items() if name in HANDLER_FIELDS}}
    data = {name: _form_value(value) for name, value in values.items()}
    data["extra_headers"] = json.dumps(body.get("extra_headers", base.get("extra_headers") or {}))
    if "secret" in body:
        secret = body["secret"]
        if secret:
            data["new_secret"] = secret
        else:
            data["clear_secret"] = True
    return data
