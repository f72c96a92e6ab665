"""Statement e-mails: each owner gets the month's statement with its PDF attached, once per
statement, and again when staff ask for it. The PDF travels by reference (read when the e-mail
is sent, a signed link when it is large: notifications/email/attachments.py); each e-mail is a
StatementDelivery row pointing at its queued notification."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction

from jobs.models import AuditEntry
from jobs.permissions.audit import audit_record
from notifications.services import notification_enqueue, notifications_enqueue_keyed

from ..models.leases import Owner
from ..models.statements import OwnerStatement, StatementDelivery
from ..periods import month_label

TEMPLATE = "billing/statement_ready"
STORAGE = "billing_statements"  # its key in settings.STORAGES


def statement_message(statement: OwnerStatement, *, name: str, email: str, language: str) -> dict:
    return {
        "recipient": email,
        "template": TEMPLATE,
        # Stored on the queued message, so a retry renders the language it was queued in.
        "language": language or settings.LANGUAGE_CODE,
        "context": {
            "owner_name": name,
            "period_label": month_label(statement.period),
            "net": str(statement.net),
            "closing_balance": str(statement.closing_balance),
            "statement_id": statement.pk,
        },
        "attachments": [
            {
                "storage": STORAGE,
                "name": statement.pdf.name,
                "filename": f"statement-{statement.period:%Y-%m}.pdf",
                "mimetype": "application/pdf",
            }
        ],
    }


def monthly_key(statement: OwnerStatement) -> str:
    # Once per owner and month: a --force re-render does not mail the owner again.
    return f"statement-ready:{statement.owner_id}:{statement.period:%Y-%m}"


def statements_deliver(*, statements: list[OwnerStatement], owners: dict[int, tuple[str, str]], now: datetime) -> int:
    """Queue the monthly e-mail of each rendered statement not mailed before; in the caller's
    transaction. ``owners``: owner id -> (name, e-mail). Three queries per batch plus the queue's
    (the owners' languages, then the two below)."""
    by_key = {monthly_key(s): s for s in statements}
    languages = dict(Owner.objects.filter(pk__in=list(owners)).values_list("pk", "language"))
    queued = notifications_enqueue_keyed(
        messages=(
            {
                **statement_message(
                    s, name=owners[s.owner_id][0], email=owners[s.owner_id][1], language=languages.get(s.owner_id, "")
                ),
                "dedupe_key": key,
            }
            for key, s in by_key.items()
        )
    )
    StatementDelivery.objects.bulk_create(
        [
            StatementDelivery(
                statement=by_key[key],
                kind=StatementDelivery.Kind.MONTHLY,
                recipient=owners[by_key[key].owner_id][1],
                notification_id=notification_id,
                requested_at=now,
            )
            for key, notification_id in queued.items()
        ],
        ignore_conflicts=True,
    )
    return len(queued)


@transaction.atomic
def statement_send_again(*, statement: OwnerStatement, actor, now: datetime, address: str = "") -> StatementDelivery:
    """One more e-mail of a rendered statement to its owner's current address; audited."""
    if not statement.pdf:
        raise ValueError(f"The statement {statement} has no PDF yet.")
    owner = statement.owner
    notification = notification_enqueue(
        **statement_message(statement, name=owner.name, email=owner.email, language=owner.language)
    )
    delivery = StatementDelivery.objects.create(
        statement=statement,
        kind=StatementDelivery.Kind.RESEND,
        recipient=owner.email,
        notification=notification,
        requested_by=actor if getattr(actor, "pk", None) else None,
        requested_at=now,
    )
    audit_record(
        actor=actor,
        action=AuditEntry.Action.OTHER,
        instance=statement,
        address=address,
        changes={"sent_again_to": [None, owner.email], "delivery": [None, delivery.pk]},
    )
    return delivery
