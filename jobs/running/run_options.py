"""A run's own options, as a person ("Run with options…") or an API caller asks for them: as of a
date or a slot, a dry run, and options of the job's command. What may be asked is what the
command's own parser declares, nothing else: never another command, never a shell.

Asked for as one flat object, ``{"as_of": "2026-03-01", "dry_run": true, "batch_size": 10}``
(``as_of`` and ``dry_run`` are the run's, every other key an option of the command), and stored
on the run as ``{"as_of": "<ISO datetime>", "dry_run": true, "command_options": {...}}``, which
``jobs.running.execution.command_argv`` turns into the command line (after the job's config).
``run_options_checked`` is called by ``run_request`` before anything is recorded, and the
worker checks the stored options again before it runs them.
"""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import CommandError

from core.formatting import format_datetime
from jobs.models import Job
from jobs.running.command import parse_as_of
from jobs.running.execution import ConfigRefused, option_flag, run_options_check

# The keys a request's options may hold besides the command's own options.
AS_OF, DRY_RUN = "as_of", "dry_run"
# What a stored run's options may hold: the two above, the command's options, runjob's raw words.
STORED_KEYS = {AS_OF, DRY_RUN, "command_options", "args"}
MAX_OPTIONS = 20


class OptionsRefused(ValueError):
    """Options no run may have; the message says which and why, for a 400 or a form error."""


def run_options_from_request(raw) -> dict:
    """The stored form of a request's flat options (not yet checked against the command)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise OptionsRefused('"options" must be a JSON object, e.g. {"as_of": "2026-03-01", "dry_run": true}.')
    if len(raw) > MAX_OPTIONS:
        raise OptionsRefused(f"At most {MAX_OPTIONS} options.")
    options: dict = {}
    command_options = {}
    for key, value in raw.items():
        if key == AS_OF:
            if value not in (None, ""):
                options[AS_OF] = value
        elif key == DRY_RUN:
            if not isinstance(value, bool):
                raise OptionsRefused('"dry_run" must be true or false.')
            if value:
                options[DRY_RUN] = True
        elif isinstance(key, str) and option_flag(key) in ("--as-of", "--dry-run"):
            raise OptionsRefused(f'Give {key!r} as "{key.removeprefix("--").replace("-", "_")}".')
        else:
            command_options[key] = value
    if command_options:
        options["command_options"] = command_options
    return options


def run_options_checked(job: Job, options: dict | None) -> dict:
    """``options`` as the run will store them (``as_of`` as an ISO datetime), once the job's
    command's own parser has read the whole command line they make; raises OptionsRefused.

    1. Only the stored keys; a webhook job takes none (it runs no command).
    2. ``as_of`` is a date (midnight UTC) or an ISO datetime, a slot's time included.
    3. The command's parser reads the job's config, the command's options and ``--as-of`` /
       ``--dry-run``: an option it does not declare, or a value it refuses, is refused in its words.
    """
    options = dict(options or {})
    if not options:
        return options
    unknown = set(options) - STORED_KEYS
    if unknown:
        raise OptionsRefused(f"Unknown run options: {', '.join(sorted(map(str, unknown)))}.")
    if job.webhook_handler_id:
        raise OptionsRefused(f"{job.name} calls a webhook: it takes no run options.")
    if AS_OF in options:
        options[AS_OF] = _as_of_text(options[AS_OF])
    if DRY_RUN in options and not isinstance(options[DRY_RUN], bool):
        raise OptionsRefused('"dry_run" must be true or false.')
    try:
        run_options_check(job.command, job.config, options)
    except ConfigRefused as exc:
        raise OptionsRefused(str(exc)) from None
    return options


def _as_of_text(value) -> str:
    if isinstance(value, datetime):
        return parse_as_of(value).isoformat()
    if not isinstance(value, str) or len(value) > 40:
        raise OptionsRefused('"as_of" must be a date (2026-03-01) or an ISO datetime (a slot).')
    try:
        return parse_as_of(value.strip()).isoformat()
    except (CommandError, ValueError, OverflowError) as exc:
        raise OptionsRefused(f'"as_of": {str(exc).removeprefix("--as-of ")}') from None


def run_options_words(options: dict | None) -> str:
    """How every page shows a run's options: ``as of 2026-03-01 00:00 UTC · dry run · --batch-size=10``."""
    options = options or {}
    parts = []
    if options.get(AS_OF):
        parts.append(f"as of {_as_of_words(options[AS_OF])}")
    if options.get(DRY_RUN):
        parts.append("dry run")
    for key, value in (options.get("command_options") or {}).items():
        flag = option_flag(key)
        parts.append(flag if value is True else f"{flag}={value}")
    parts += [str(arg) for arg in options.get("args", ())]
    return " · ".join(parts)


def _as_of_words(value) -> str:
    try:
        return format_datetime(parse_as_of(value))
    except (CommandError, ValueError, TypeError):
        return str(value)
