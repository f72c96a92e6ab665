"""intercom-sync: push Active and Retired members to Intercom as contacts, changed ones only.

Per member (in primary-key batches of active members whose status is active or retired):

1. Build the contact (external_id = member number, name, email, phone) and its status tag
   (``Active`` / ``Retired``); hash them. Same hash as the last push: skip it.
2. Upsert the contact, idempotently: update by the stored contact id; without one (or if Intercom
   lost it) search by external_id first and update what it finds, create only when it finds
   nothing. A run that crashed after a create and before step 4 finds that contact next time.
3. Attach the status tag (tags are created, or found by name, once per run); detach the other.
4. Record the contact id, hash, tag and time (``IntercomContact``).

Steps 2-3 repeat as a whole on 429 (at the reset time), 5xx and network errors
(``intercom_client.call_with_retries``). A member that still fails is counted and the run ends
failed after trying the rest.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from intercom import CreateContactRequestWithExternalId, CreateOrUpdateTagRequest, SingleFilterSearchRequest
from intercom.core.api_error import ApiError
from intercom.errors.not_found_error import NotFoundError

from core.http_guard import HttpxTransportError

from .intercom_client import call_with_retries, intercom_client
from .models import IntercomContact, Member

logger = logging.getLogger(__name__)

TAGS = {Member.Status.ACTIVE: "Active", Member.Status.RETIRED: "Retired"}
MEMBER_COLUMNS = ("pk", "member_number", "first_name", "last_name", "email", "phone", "status")
PUSHED_COLUMNS = ("intercom_contact__contact_id", "intercom_contact__pushed_hash", "intercom_contact__pushed_tag")


class IntercomPushFailed(Exception):
    pass


@dataclass
class PushCounts:
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def contact_fields(row: dict) -> dict:
    name = " ".join(part for part in (row["first_name"], row["last_name"]) if part)
    return {
        "external_id": row["member_number"],
        "name": name or None,
        "email": row["email"] or None,
        "phone": row["phone"] or None,
    }


def contact_hash(fields: dict, tag: str) -> str:
    return hashlib.sha256(json.dumps([fields, tag], sort_keys=True).encode()).hexdigest()


def member_batches(size: int):
    """Active members with status active or retired, with what was last pushed for them."""
    members = Member.objects.filter(is_active=True, status__in=list(TAGS)).order_by("pk")
    last = 0
    while batch := list(members.filter(pk__gt=last).values(*MEMBER_COLUMNS, *PUSHED_COLUMNS)[:size]):
        yield batch
        last = batch[-1]["pk"]


def contact_upsert(client, fields: dict, contact_id: str | None) -> tuple[str, bool]:
    """(Intercom contact id, created?) for ``fields``; safe to repeat after any failure."""
    if contact_id:
        try:
            client.contacts.update(contact_id, **fields)
            return contact_id, False
        except NotFoundError:
            pass  # deleted in Intercom: find it by external_id, or create it again
    query = SingleFilterSearchRequest(field="external_id", operator="=", value=fields["external_id"])
    found = next(iter(client.contacts.search(query=query).items or []), None)
    if found is not None:
        client.contacts.update(found.id, **fields)
        return found.id, False
    created = client.contacts.create(request=CreateContactRequestWithExternalId(role="user", **fields))
    return created.id, True


def tag_ids(client) -> dict[str, str]:
    """Intercom's ids of the status tags (POST /tags creates a tag or returns the one of that name)."""
    return {
        name: call_with_retries(lambda n=name: client.tags.create(request=CreateOrUpdateTagRequest(name=n))).id
        for name in TAGS.values()
    }


def tags_set(client, contact_id: str, tag: str, previous: str, tags: dict[str, str]) -> None:
    client.tags.tag_contact(contact_id, tag_id=tags[tag])
    if previous and previous != tag:
        try:
            client.tags.untag_contact(contact_id, tags[previous])
        except NotFoundError:
            pass  # already gone


def contact_record(*, member_id: int, contact_id: str, digest: str, tag: str, now: datetime) -> None:
    IntercomContact.objects.bulk_create(
        [
            IntercomContact(
                member_id=member_id, contact_id=contact_id, pushed_hash=digest, pushed_tag=tag, pushed_at=now
            )
        ],
        update_conflicts=True,
        unique_fields=["member"],
        update_fields=["contact_id", "pushed_hash", "pushed_tag", "pushed_at"],
    )


def member_push(client, row: dict, *, fields: dict, tag: str, digest: str, tags: dict, now: datetime) -> bool:
    """Steps 2-4 for one member; True if its contact was created."""

    def push() -> tuple[str, bool]:
        contact_id, created = contact_upsert(client, fields, row["intercom_contact__contact_id"])
        tags_set(client, contact_id, tag, row["intercom_contact__pushed_tag"] or "", tags)
        return contact_id, created

    contact_id, created = call_with_retries(push)
    contact_record(member_id=row["pk"], contact_id=contact_id, digest=digest, tag=tag, now=now)
    return created


def intercom_push(
    *,
    now: datetime,
    dry_run: bool = False,
    batch_size: int | None = None,
    progress: Callable[[int], object] | None = None,
    client_factory: Callable = intercom_client,
) -> dict:
    """Push changed Active/Retired members (module docstring); returns counts. A dry run counts
    what would be pushed, calls nothing and needs no token."""
    client = None if dry_run else client_factory()
    counts, tags = PushCounts(), None
    for batch in member_batches(batch_size or settings.DIRECTORY_BATCH_SIZE):
        for row in batch:
            counts.read += 1
            fields, tag = contact_fields(row), TAGS[row["status"]]
            digest = contact_hash(fields, tag)
            if digest == row["intercom_contact__pushed_hash"]:
                counts.unchanged += 1
                continue
            if dry_run:
                counts.updated += bool(row["intercom_contact__contact_id"])
                counts.created += not row["intercom_contact__contact_id"]
                continue
            tags = tags or tag_ids(client)
            member_failed = _push_or_count(client, row, fields, tag, digest, tags, now, counts)
            if member_failed:
                logger.warning("intercom-sync: member %s not pushed: %s", row["member_number"], counts.errors[-1])
        if progress is not None:
            progress(len(batch))
    summary = {k: v for k, v in counts.__dict__.items() if k != "errors"}
    if counts.failed:
        raise IntercomPushFailed(
            f"{counts.failed} of {counts.read} members could not be pushed to Intercom (first: {counts.errors[0]}); "
            f"{summary}"
        )
    return summary


def _push_or_count(client, row, fields, tag, digest, tags, now, counts: PushCounts) -> bool:
    try:
        created = member_push(client, row, fields=fields, tag=tag, digest=digest, tags=tags, now=now)
    except ApiError as exc:
        counts.failed += 1
        counts.errors.append(f"HTTP {exc.status_code} from Intercom")
        return True
    except HttpxTransportError as exc:  # a network error after the last retry: try the other members
        counts.failed += 1
        counts.errors.append(f"{exc.__class__.__name__}: {exc}")
        return True
    counts.created += created
    counts.updated += not created
    return False
