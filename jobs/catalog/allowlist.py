"""Which management commands a job may run: an allow-list, never "every command installed".

A command is allowed when it is

1. the command of a job definition an app ships (``job_definitions.py``, ``jobs.catalog.definitions``),
   which is how Django's own ``clearsessions`` gets on the list (``cleanup-sessions``);
2. a ``JobCommand`` (``jobs.running.command``): written to be a job, with ``--dry-run`` and ``--as-of``;
3. named in ``JOBS_EXTRA_COMMANDS``, the installation's own choice of any other command.

Everything else (``flush``, ``dumpdata``, ``loaddata``, ``migrate``, ``shell``, ``create_api_key``,
``import_jobs``, ...) is refused: a permission to edit a job is never a permission to run
arbitrary code or to wipe the database. Every surface that sets a job's command asks
``command_refusal`` (the model's ``clean()``, so the admin, the dashboard, ``import_jobs`` and
``seed_jobs``), and the worker asks again before it runs anything (``jobs.running.execution``).
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.management import get_commands, load_command_class


@functools.cache
def _job_command_names() -> frozenset[str]:
    """Installed commands that are JobCommands. Loading every command class once per process
    costs tens of milliseconds; the answer cannot change without a restart."""
    from jobs.running.command import JobCommand

    names = set()
    for name, app_name in get_commands().items():
        try:
            command = load_command_class(app_name, name)
        except Exception:  # a command whose module does not import cannot run as a job either
            continue
        if isinstance(command, JobCommand):
            names.add(name)
    return frozenset(names)


@functools.cache
def _defined_command_names() -> frozenset[str]:
    """Commands of the job definitions every app ships (fixtures included: they are JobCommands)."""
    from jobs.catalog.definitions import shipped_definitions

    return frozenset(definition.command for definition in shipped_definitions(with_fixtures=True))


def allowed_commands() -> dict[str, str]:
    """Every allowed command that is installed, with the app that provides it, by name."""
    installed = get_commands()
    names = _job_command_names() | _defined_command_names() | set(settings.JOBS_EXTRA_COMMANDS)
    return {name: installed[name] for name in sorted(names) if name in installed}


def command_refusal(name: str) -> str | None:
    """Why a job may not run the command ``name`` (None: it may)."""
    if name not in get_commands():
        return f"Unknown command {name!r}: no such management command is installed, so it is not on the allow-list."
    if name not in allowed_commands():
        return (
            f"command {name!r} is not on the allow-list: a job runs only the commands registered as jobs "
            "(job definitions and JobCommands) and those named in JOBS_EXTRA_COMMANDS."
        )
    return None


def command_choices(current: str = "") -> list[tuple[str, str]]:
    """The form's choices: a webhook (no command), then every allowed command with its app. The
    job's current command is listed even when it is not allowed (saving it again is refused)."""
    allowed = allowed_commands()
    choices = [("", "— none: call a webhook handler —")]
    choices += [(name, f"{name}  ({app.rsplit('.', 1)[-1]})") for name, app in allowed.items()]
    if current and current not in allowed:
        reason = "not installed" if current not in get_commands() else "not on the allow-list"
        choices.append((current, f"{current}  ({reason})"))
    return choices
