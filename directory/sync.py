"""Source syncs: copy the legacy source's rows into the directory, set-based, batch by batch.

One engine serves regions, facilities, members and positions (``ENTITIES``):

1. Decide the mode: full (``--full``, no cursor yet, or the last full sync older than
   ``DIRECTORY_FULL_SYNC_DAYS``) reads every source row in primary-key order; incremental reads
   the rows whose ``updated_at`` is at or after the cursor minus ``DIRECTORY_SYNC_OVERLAP_SECONDS``,
   in ``(updated_at, pk)`` order.
2. Per batch of ``DIRECTORY_BATCH_SIZE`` source rows, in one transaction: convert them (codes to
   our ids), read our copies of the batch's keys in one query, and write only the new and changed
   ones with one ``INSERT ... ON CONFLICT DO UPDATE`` (``bulk_create(update_conflicts=True)``).
   A crash loses at most the batch in flight; the next run reads it again.
3. Full syncs only: rows we hold as active that the source no longer has are marked inactive
   (never deleted), in batches. A source that returns no rows at all while we hold active ones
   is refused, not taken as "everyone left".
4. Move the cursor to the newest ``updated_at`` read (not on a dry run).

Queries: a fixed number per batch (a source read, a read of ours, an upsert), plus a fixed number
per run (among them the code-to-id maps: regions, facilities, and members for positions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Model, Q

from .models import (
    Facility,
    Member,
    Position,
    Region,
    SourceFacility,
    SourceMember,
    SourcePosition,
    SourceRegion,
    SyncCursor,
)
from .statuses import member_status


class SyncRefused(Exception):
    """The sync would do something a source outage looks like; nothing was deactivated."""


@dataclass
class SyncCounts:
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Entity:
    name: str
    source: type[Model]
    target: type[Model]
    key: str  # the target's unique business key
    fields: tuple[str, ...]  # target fields compared and written
    source_fields: tuple[str, ...]
    # Returns a function turning one batch of source rows into target values (None: skip the row).
    converter: Callable[[], Callable[[list[dict]], list[dict | None]]]
    deactivation: Callable[[datetime], dict] = field(default=lambda now: {"is_active": False, "synced_at": now})


def _text(value) -> str:
    return (value or "").strip()


def _region_converter():
    def convert(rows: list[dict]) -> list[dict | None]:
        return [{"code": _text(r["code"]), "name": _text(r["name"])} for r in rows]

    return convert


def _facility_converter():
    regions = dict(Region.objects.values_list("code", "pk"))

    def convert(rows: list[dict]) -> list[dict | None]:
        return [
            {
                "code": _text(r["code"]),
                "name": _text(r["name"]),
                "region_id": regions.get(_text(r["region_code"])),
                "city": _text(r["city"]),
                "state": _text(r["state"]).upper(),
            }
            for r in rows
        ]

    return convert


def _member_converter():
    facilities = dict(Facility.objects.values_list("code", "pk"))

    def convert(rows: list[dict]) -> list[dict | None]:
        return [
            {
                "member_number": _text(r["member_number"]),
                "first_name": _text(r["first_name"]),
                "last_name": _text(r["last_name"]),
                "email": _text(r["email"]).lower(),
                "phone": _text(r["phone"]),
                "status": member_status(r["status"]),
                "source_status": _text(r["status"])[:20],
                "facility_id": facilities.get(_text(r["facility_code"])),
                "hired_on": r["hired_on"],
                "deactivated_at": None,
            }
            for r in rows
        ]

    return convert


def _position_converter():
    facilities = dict(Facility.objects.values_list("code", "pk"))
    # One query per run, as for facilities: a per-batch look-up sends thousands of member numbers
    # in an IN list, which costs more to build and parse than reading every member's key once.
    members = dict(Member.objects.values_list("member_number", "pk"))

    def convert(rows: list[dict]) -> list[dict | None]:
        converted: list[dict | None] = []
        for r in rows:
            member_id = members.get(_text(r["member_number"]))
            facility_id = facilities.get(_text(r["facility_code"]))
            if member_id is None or facility_id is None:
                converted.append(None)  # its member or facility is not (yet) in the directory
                continue
            converted.append(
                {
                    "source_id": r["pk"],
                    "member_id": member_id,
                    "facility_id": facility_id,
                    "title": _text(r["title"]),
                    "starts_on": r["starts_on"],
                    "ends_on": r["ends_on"],
                    "is_primary": bool(r["is_primary"]),
                }
            )
        return converted

    return convert


ENTITIES = {
    "regions": Entity("regions", SourceRegion, Region, "code", ("name",), ("code", "name"), _region_converter),
    "facilities": Entity(
        "facilities",
        SourceFacility,
        Facility,
        "code",
        ("name", "region_id", "city", "state"),
        ("code", "name", "region_code", "city", "state"),
        _facility_converter,
    ),
    "members": Entity(
        "members",
        SourceMember,
        Member,
        "member_number",
        (
            "first_name",
            "last_name",
            "email",
            "phone",
            "status",
            "source_status",
            "facility_id",
            "hired_on",
            "deactivated_at",
        ),
        ("member_number", "first_name", "last_name", "email", "phone", "status", "facility_code", "hired_on"),
        _member_converter,
        deactivation=lambda now: {"is_active": False, "deactivated_at": now, "synced_at": now},
    ),
    "positions": Entity(
        "positions",
        SourcePosition,
        Position,
        "source_id",
        ("member_id", "facility_id", "title", "starts_on", "ends_on", "is_primary"),
        ("member_number", "facility_code", "title", "starts_on", "ends_on", "is_primary"),
        _position_converter,
    ),
}


# --- reading the source ---------------------------------------------------------------------


def source_batches(entity: Entity, *, since: datetime | None, size: int) -> Iterator[list[dict]]:
    """The source's rows in batches: all by primary key, or (``since``) those changed since then
    by ``(updated_at, pk)``. Keyset paging: each page is one indexed query at any depth."""
    columns = ("pk", "updated_at", *entity.source_fields)
    rows = entity.source.objects.all()
    if since is not None:
        rows = rows.filter(updated_at__gte=since)
    order = ("pk",) if since is None else ("updated_at", "pk")
    last: dict | None = None
    while True:
        page = rows
        if last is not None and since is None:
            page = rows.filter(pk__gt=last["pk"])
        elif last is not None:
            after = last["updated_at"]
            page = rows.filter(Q(updated_at__gt=after) | Q(updated_at=after, pk__gt=last["pk"]))
        batch = list(page.order_by(*order).values(*columns)[:size])
        if batch:
            yield batch
        if len(batch) < size:
            return
        last = batch[-1]


# --- writing ours -----------------------------------------------------------------------------


def batch_apply(
    entity: Entity, values: list[dict], *, now: datetime, dry_run: bool, counts: SyncCounts, ours_empty: bool = False
) -> None:
    """Upsert one converted batch (``values`` carry ``source_updated_at``): only new or changed
    rows are written, in one statement inside the caller's transaction. ``ours_empty``: our
    table was empty when the run began (a first sync), so there are no copies to read."""
    ours = {} if ours_empty else ours_read(entity, [v[entity.key] for v in values])
    changed = []
    for v in values:
        old = ours.get(v[entity.key])
        if old is None:
            counts.created += 1
        elif old["is_active"] and all(old[name] == v[name] for name in entity.fields):
            counts.unchanged += 1
            continue
        else:
            counts.updated += 1
        changed.append(entity.target(**v, is_active=True, synced_at=now))
    if changed and not dry_run:
        entity.target.objects.bulk_create(
            changed,
            update_conflicts=True,
            unique_fields=[entity.key],
            update_fields=[*entity.fields, "is_active", "source_updated_at", "synced_at"],
        )


def ours_read(entity: Entity, keys: list) -> dict:
    rows = entity.target.objects.filter(**{f"{entity.key}__in": keys}).values(entity.key, "is_active", *entity.fields)
    return {row[entity.key]: row for row in rows}


def missing_deactivate(entity: Entity, seen: set, *, now: datetime, dry_run: bool, size: int) -> int:
    """Mark inactive our active rows whose key the full read did not see; returns how many."""
    active = entity.target.objects.filter(is_active=True).values_list(entity.key, flat=True)
    missing = [key for key in active if key not in seen]
    if dry_run:
        return len(missing)
    for start in range(0, len(missing), size):
        with transaction.atomic():
            entity.target.objects.filter(**{f"{entity.key}__in": missing[start : start + size]}).update(
                **entity.deactivation(now)
            )
    return len(missing)


# --- one entity's run -------------------------------------------------------------------------


def cursor_get(name: str) -> SyncCursor | None:
    return SyncCursor.objects.filter(name=name).first()


def full_sync_due(cursor: SyncCursor | None, *, now: datetime) -> bool:
    if cursor is None or cursor.full_synced_at is None or cursor.source_updated_at is None:
        return True
    return cursor.full_synced_at <= now - timedelta(days=settings.DIRECTORY_FULL_SYNC_DAYS)


def entity_sync(
    name: str,
    *,
    now: datetime,
    full: bool = False,
    dry_run: bool = False,
    batch_size: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> dict:
    """Sync one entity (see the module docstring for the steps); returns its summary."""
    entity = ENTITIES[name]
    size = batch_size or settings.DIRECTORY_BATCH_SIZE
    if size < 1:
        raise ValueError("batch size must be at least 1")
    cursor = cursor_get(name)
    full = full or full_sync_due(cursor, now=now)
    since = None if full else cursor.source_updated_at - timedelta(seconds=settings.DIRECTORY_SYNC_OVERLAP_SECONDS)
    counts, seen, newest = SyncCounts(), set(), None
    # Source keys are unique, so on a first sync no batch can meet a copy an earlier one wrote.
    ours_empty = not entity.target.objects.exists()
    convert = entity.converter()
    for batch in source_batches(entity, since=since, size=size):
        counts.read += len(batch)
        batch_newest = max(r["updated_at"] for r in batch)
        newest = batch_newest if newest is None else max(newest, batch_newest)
        with transaction.atomic():
            values = []
            for row, converted in zip(batch, convert(batch), strict=True):
                if converted is None:
                    counts.skipped += 1
                    continue
                converted["source_updated_at"] = row["updated_at"]
                values.append(converted)
                seen.add(converted[entity.key])
            batch_apply(entity, values, now=now, dry_run=dry_run, counts=counts, ours_empty=ours_empty)
        if progress is not None:
            progress(len(batch))
    if full:
        if counts.read == 0 and entity.target.objects.filter(is_active=True).exists():
            raise SyncRefused(
                f"The source returned no {name} at all; refusing to mark every {name[:-1]} inactive "
                "(an empty or unreachable source table looks like this). Nothing was deactivated."
            )
        counts.deactivated = missing_deactivate(entity, seen, now=now, dry_run=dry_run, size=size)
    if not dry_run:
        cursor_move(name, newest=newest, full_at=now if full else None)
    return {"mode": "full" if full else "incremental", **counts.as_dict()}


def cursor_move(name: str, *, newest: datetime | None, full_at: datetime | None) -> None:
    cursor, _ = SyncCursor.objects.get_or_create(name=name)
    if newest is not None and (cursor.source_updated_at is None or newest > cursor.source_updated_at):
        cursor.source_updated_at = newest
    if full_at is not None:
        cursor.full_synced_at = full_at
    cursor.save()
