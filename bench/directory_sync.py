"""The directory's source syncs on a legacy MariaDB source of 50,000 members, 400 facilities and
100,000 position rows, into PostgreSQL, against in the same run the row-by-row ORM loop a user
would otherwise write (``update_or_create`` per source row, facilities looked up from a dict).

Measured: the first sync (facilities-regions-sync, members-sync, positions-sync; goal < 20 s)
and an incremental sync after 1 % of members and positions changed (members-sync and
positions-sync; goal < 3 s), each through its command; the baseline does the same two steps.
Before each first sync our tables are emptied; the source is built once.

    .venv/bin/python bench/directory_sync.py [--members 50000] [--skip-baseline]

Needs MariaDB on 127.0.0.1:3306 (root, no password; ``bin/services-up`` starts it) and PostgreSQL.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Both benchmark databases (PostgreSQL and MariaDB) take this name; ``--database`` picks
# another, so that two runs on one machine do not drop each other's data.
DATABASE = "cronhouse_bench_directory"
MARIADB = os.environ.get("BENCH_MARIADB", "mysql://root@127.0.0.1:3306")
T0 = datetime(2025, 3, 1, 6, 0)
CHUNK = 10_000


def mariadb(database: str | None = None):
    import MySQLdb

    return MySQLdb.connect(
        host="127.0.0.1", port=3306, user="root", password="", database=database or "", charset="utf8mb4"
    )


def source_build(members: int, facilities: int, positions: int) -> None:
    """The legacy database, recreated, filled with executemany (multi-row INSERTs)."""
    from directory import legacy_schema

    server = mariadb()
    cursor = server.cursor()
    cursor.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    cursor.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
    server.close()
    db = mariadb(DATABASE)
    cursor = db.cursor()
    for statement in legacy_schema.MYSQL:
        cursor.execute(statement)
    rng = random.Random(7)
    stamp = lambda: T0 - timedelta(days=rng.randint(1, 300), seconds=rng.randint(0, 86_000))  # noqa: E731
    regions = [(f"R{i}", f"Region {i}", stamp()) for i in range(10)]
    facility_rows = [
        (f"F{i:04d}", f"Facility {i}", f"R{i % 10}", "Springfield", "ma", stamp()) for i in range(facilities)
    ]
    statuses = ["Active"] * 7 + ["RETIRED", "Leave ", "TERM"]
    member_rows = [
        (f"M{i:07d}", "Ana", f"Lopez{i}", f"m{i}@bench.test", "555-0100", rng.choice(statuses),
         f"F{rng.randrange(facilities):04d}", date(2010, 1, 1) + timedelta(days=i % 4000), stamp())
        for i in range(members)
    ]  # fmt: skip
    position_rows = [
        (f"M{i % members:07d}", f"F{rng.randrange(facilities):04d}", "Nurse", date(2020, 1, 1), None, int(i < members),
         stamp())
        for i in range(positions)
    ]  # fmt: skip
    for table, rows in (("tblRegion", regions), ("tblFacility", facility_rows), ("tblMember", member_rows),
                        ("tblMemberPosition", position_rows)):  # fmt: skip
        for start in range(0, len(rows), CHUNK):
            cursor.executemany(legacy_schema.insert_sql(table, placeholder="%s"), rows[start : start + CHUNK])
        db.commit()
    cursor.execute("ANALYZE TABLE tblRegion, tblFacility, tblMember, tblMemberPosition")
    cursor.fetchall()
    db.close()


def source_change(fraction: float, members: int, positions: int) -> tuple[int, int]:
    """Change ``fraction`` of members (e-mail) and positions (title), updated_at a day after T0."""
    db = mariadb(DATABASE)
    cursor = db.cursor()
    step = round(1 / fraction)
    at = T0 + timedelta(days=1)
    changed_members = cursor.execute(
        "UPDATE tblMember SET EmailAddr = CONCAT('new.', EmailAddr), updated_at = %s WHERE MemberID %% %s = 0",
        (at, step),
    )
    changed_positions = cursor.execute(
        "UPDATE tblMemberPosition SET PosTitle = 'Charge Nurse', updated_at = %s WHERE PosID %% %s = 0", (at, step)
    )
    db.commit()
    db.close()
    return changed_members, changed_positions


def ours_reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE directory_intercomcontact, directory_position, directory_member, directory_facility, "
            "directory_region, directory_synccursor"
        )
        cursor.execute("VACUUM ANALYZE")


def backend_cpu() -> tuple[int, float]:
    """Our PostgreSQL connection's server process and the CPU seconds it has used (from /proc:
    the server runs on this machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def timed(label: str, work) -> float:
    """Runs ``work`` and prints its wall-clock time and, since the machine is shared and wall-clock
    time moves with its load, the CPU seconds of this process and of its PostgreSQL backend."""
    backend_before = backend_cpu()
    cpu = time.process_time()
    start = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    backend_after = backend_cpu()
    backend = f"{backend_after[1] - backend_before[1]:.1f}" if backend_after[0] == backend_before[0] else "?"
    print(f"  {label:<44} {elapsed:8.2f} s  (CPU: Python {cpu:.1f} s, PostgreSQL {backend} s)   "
          f"{result if result is not None else ''}")  # fmt: skip
    return elapsed


def jobs(*commands: str):
    from django.core.management import call_command

    def run():
        summaries = {c: call_command(c, stdout=io.StringIO()) for c in commands}
        return {c: {k: v for k, v in s.items() if k in ("created", "updated", "unchanged", "read")} for c, s in
                summaries.items() if "read" in s}  # fmt: skip

    return run


def baseline(*, since: datetime | None = None):
    """What a user would write: a loop over the source rows, update_or_create per row."""
    from directory.models import (
        Facility,
        Member,
        Position,
        Region,
        SourceFacility,
        SourceMember,
        SourcePosition,
        SourceRegion,
    )  # fmt: skip
    from directory.statuses import member_status

    synced = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)

    def run() -> dict:
        rows = 0
        changed = {} if since is None else {"updated_at__gte": since}
        if since is None:
            for r in SourceRegion.objects.iterator():
                Region.objects.update_or_create(
                    code=r.code, defaults={"name": r.name, "source_updated_at": r.updated_at, "synced_at": synced}
                )
            regions = dict(Region.objects.values_list("code", "pk"))
            for f in SourceFacility.objects.iterator():
                Facility.objects.update_or_create(
                    code=f.code,
                    defaults={"name": f.name, "region_id": regions.get(f.region_code), "city": f.city or "",
                              "state": (f.state or "").upper(), "source_updated_at": f.updated_at, "synced_at": synced},
                )  # fmt: skip
        facilities = dict(Facility.objects.values_list("code", "pk"))
        for m in SourceMember.objects.filter(**changed).iterator(chunk_size=2000):
            rows += 1
            Member.objects.update_or_create(
                member_number=m.member_number,
                defaults={"first_name": m.first_name or "", "last_name": m.last_name or "", "email": m.email or "",
                          "phone": m.phone or "", "status": member_status(m.status), "source_status": m.status or "",
                          "facility_id": facilities.get(m.facility_code), "hired_on": m.hired_on,
                          "source_updated_at": m.updated_at, "synced_at": synced},
            )  # fmt: skip
        for p in SourcePosition.objects.filter(**changed).iterator(chunk_size=2000):
            rows += 1
            member = Member.objects.get(member_number=p.member_number)
            Position.objects.update_or_create(
                source_id=p.id,
                defaults={"member": member, "facility_id": facilities[p.facility_code], "title": p.title,
                          "starts_on": p.starts_on, "ends_on": p.ends_on, "is_primary": p.is_primary,
                          "source_updated_at": p.updated_at, "synced_at": synced},
            )  # fmt: skip
        return {"rows": rows}

    return run


def main() -> None:
    global DATABASE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--facilities", type=int, default=400)
    parser.add_argument("--positions", type=int, default=100_000)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep both benchmark databases")
    parser.add_argument("--database", default=DATABASE, help=f"name of both benchmark databases (default {DATABASE})")
    args = parser.parse_args()
    DATABASE = args.database
    os.environ["DIRECTORY_SOURCE_URL"] = f"{MARIADB}/{DATABASE}"
    from bench.billing_common import django_setup, drop_database

    django_setup(DATABASE)
    print(f"directory syncs: {args.members:,} members, {args.facilities} facilities, {args.positions:,} positions")
    print("  building the MariaDB source ...", flush=True)
    source_build(args.members, args.facilities, args.positions)
    try:
        ours_reset()
        print("Cronhouse jobs (set-based upserts in batches):")
        first = timed("first sync (3 jobs, full)", jobs("facilities_regions_sync", "members_sync", "positions_sync"))
        timed("re-run, nothing changed (incremental)", jobs("members_sync", "positions_sync"))
        changed = source_change(0.01, args.members, args.positions)
        print(f"  changed in the source: {changed[0]} members, {changed[1]} positions")
        incremental = timed("incremental sync, 1 % changed", jobs("members_sync", "positions_sync"))
        timed("full sync, nothing changed (--full)", full_sync)
        if not args.skip_baseline:
            source_build(args.members, args.facilities, args.positions)
            ours_reset()
            print("baseline (update_or_create per row):")
            base_first = timed("first sync", baseline())
            source_change(0.01, args.members, args.positions)
            base_incremental = timed(
                "incremental, 1 % changed (rows by updated_at)", baseline(since=T0.replace(tzinfo=UTC))
            )
            ratios = f"first sync {base_first / first:.1f}x, incremental {base_incremental / incremental:.1f}x"
            print(f"ratio baseline / ours: {ratios}")
        print(f"goals: first sync < 20 s: {'met' if first < 20 else 'missed'} ({first:.2f} s); "
              f"incremental < 3 s: {'met' if incremental < 3 else 'missed'} ({incremental:.2f} s)")  # fmt: skip
    finally:
        if not args.keep:
            drop_database(DATABASE)
            db = mariadb()
            db.cursor().execute(f"DROP DATABASE IF EXISTS {DATABASE}")
            db.close()


def full_sync():
    from django.core.management import call_command

    return {c: call_command(c, "--full", stdout=io.StringIO())["unchanged"] for c in ("members_sync", "positions_sync")}


if __name__ == "__main__":
    main()
