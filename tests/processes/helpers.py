"""Small helpers for the integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json


def command_summary(output: str) -> dict:
    """The JSON summary a job command prints as its last stdout line (log lines may follow on stderr)."""
    for line in reversed(output.splitlines()):
        if line.startswith("{") and line.endswith("}"):
            return json.loads(line)
    raise AssertionError(f"no JSON summary in output:\n{output}")


def fresh(obj):
    obj.refresh_from_db()
    return obj


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
