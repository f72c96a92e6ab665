"""The legacy source's free-text member statuses, mapped to ``Member.Status``."""

from __future__ import annotations

# Spellings seen in the source (compared trimmed and upper-cased).
SOURCE_STATUSES = {
    "A": "active",
    "ACT": "active",
    "ACTIVE": "active",
    "R": "retired",
    "RET": "retired",
    "RETIRED": "retired",
    "L": "leave",
    "LOA": "leave",
    "LEAVE": "leave",
    "ON LEAVE": "leave",
    "T": "terminated",
    "TERM": "terminated",
    "TERMINATED": "terminated",
    "D": "deceased",
    "DECEASED": "deceased",
}


def member_status(value: str | None) -> str:
    """``Member.Status`` value for a source MbrStatus; ``unknown`` for anything unmapped."""
    return SOURCE_STATUSES.get((value or "").strip().upper(), "unknown")
