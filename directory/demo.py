"""The directory's demo: a small legacy source (an SQLite file in the var dir) for the syncs to read.

``manage.py seed_demo`` (and so ``bin/run``) builds it, then runs the three source syncs once, so
the directory fills from a "legacy system" out of the box. Deterministic: the same seed and date
give the same rows. Only the embedded source is ever written: with ``DIRECTORY_SOURCE_URL`` set
(a real legacy database) there is nothing to seed, and ``demo_present()`` says so.
"""

from __future__ import annotations

import os
import random
import sqlite3
from datetime import date, datetime, time, timedelta
from pathlib import Path

from django.conf import settings

from . import legacy_schema

DEMO_JOBS = ["facilities-regions-sync", "members-sync", "positions-sync"]
SIZES = {"small": 60, "medium": 2_000, "large": 50_000}  # members
REGIONS = [("NE", "North East"), ("SE", "South East"), ("MW", "Midwest"), ("WE", "West")]
CITIES = [("Springfield", "MA"), ("Hartford", "CT"), ("Atlanta", "GA"), ("Columbus", "OH"), ("Denver", "CO")]
FIRST = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kira", "Liam", "Mona", "Noah"]
LAST = ["Alvarez", "Brown", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ito", "Jones", "Khan", "Lopez"]
# As the legacy application wrote them: mixed case, abbreviations, stray spaces.
STATUSES = ["Active"] * 6 + ["ACTIVE", "Retired", "RET ", "Leave", "TERM", "Deceased"]
TITLES = ["Registered Nurse", "Charge Nurse", "Physician", "Pharmacist", "Technician", "Shift Lead"]


def embedded_source() -> bool:
    return not settings.DIRECTORY_SOURCE_URL


def source_path() -> Path:
    return Path(settings.DIRECTORY_SOURCE_SQLITE_PATH)


def demo_present() -> bool:
    """True when there is nothing to seed: the embedded source has members, or the source is real."""
    if not embedded_source():
        return True
    if not source_path().exists():
        return False
    try:
        with sqlite3.connect(f"file:{source_path()}?mode=ro", uri=True) as connection:
            return connection.execute("SELECT COUNT(*) FROM tblMember").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def demo_seed(*, size: str, count: int | None, today: date, seed: int = 7) -> dict:
    """Write the embedded legacy source (a new file, swapped in whole); returns its row counts."""
    if not embedded_source():
        return {}
    members = count if count is not None else SIZES[size]
    rows = source_rows(random.Random(seed), members=members, today=today)
    path = source_path()
    building = path.with_name(path.name + ".building")
    building.unlink(missing_ok=True)
    with sqlite3.connect(building) as connection:
        for statement in legacy_schema.SQLITE:
            connection.execute(statement)
        for table, table_rows in rows.items():
            connection.executemany(legacy_schema.insert_sql(table, placeholder="?"), table_rows)
    connection.close()
    os.replace(building, path)
    return {
        "legacy-source regions": len(rows["tblRegion"]),
        "facilities": len(rows["tblFacility"]),
        "members": len(rows["tblMember"]),
        "positions": len(rows["tblMemberPosition"]),
    }


def source_rows(rng: random.Random, *, members: int, today: date) -> dict[str, list[tuple]]:
    """The legacy tables' rows: about one facility per 25 members, one or two positions each."""
    start = datetime.combine(today, time(6))

    def stamp(days_back: int) -> str:  # the legacy system's naive text timestamps
        return (start - timedelta(days=days_back, minutes=rng.randint(0, 600))).isoformat(" ")

    regions = [(code, name, stamp(400)) for code, name in REGIONS]
    facilities = []
    for i in range(max(2, min(400, members // 25))):
        city, state = CITIES[i % len(CITIES)]
        facilities.append(
            (
                f"F{i + 1:03d}",
                f"{city} {rng.choice(['General', 'Clinic', 'Medical Center'])} {i + 1}",
                REGIONS[i % len(REGIONS)][0],
                city,
                state.lower(),
                stamp(rng.randint(30, 400)),
            )
        )
    member_rows, positions = [], []
    for i in range(members):
        number = f"M{100000 + i}"
        first, last = rng.choice(FIRST), rng.choice(LAST)
        facility = rng.choice(facilities)[0]
        hired = today - timedelta(days=rng.randint(200, 9000))
        email = f"{first}.{last}.{i}@demo.cronhouse.test".lower() if i % 17 else None
        member_rows.append(
            (
                number,
                first,
                last,
                email,
                f"555-{i % 10000:04d}",
                rng.choice(STATUSES),
                facility,
                hired.isoformat(),
                stamp(rng.randint(0, 60)),
            )
        )
        for p in range(1 + (i % 3 == 0)):
            ends = (today - timedelta(days=rng.randint(1, 100))).isoformat() if p else None
            positions.append(
                (
                    number,
                    facility if not p else rng.choice(facilities)[0],
                    rng.choice(TITLES),
                    hired.isoformat(),
                    ends,
                    int(not p),
                    stamp(rng.randint(0, 60)),
                )
            )
    return {"tblRegion": regions, "tblFacility": facilities, "tblMember": member_rows, "tblMemberPosition": positions}
