"""process-notifications: drain the e-mail queue so that two drains never send one message twice.

Per batch:

1. Claim: one transaction selects due messages with ``FOR UPDATE SKIP LOCKED`` (a second
   drain skips them instead of waiting), marks them ``processing`` with this batch's claim
   token, and counts the attempt, through the ORM on both databases (on SQLite the IMMEDIATE
   transaction holds the write lock instead, so two drains' claims cannot interleave).
2. Send, after that commit: render each message and hand it to Django's e-mail backend
   (``EMAIL_URL``), one connection per batch. A server that cannot be reached, or a connection
   lost mid-batch, fails this attempt of every message not yet sent (each gets its backoff)
   and ends the drain for this run: the run succeeds with a warning, its summary names the
   cause, and /health/'s ``mail`` component is degraded until a drain sends again.
3. Record: one UPDATE marks the sent ones ``sent``; each failure gets its own backoff
   (1 -> 3 -> 9 -> 15 min, capped) or becomes ``dead`` after NOTIFICATIONS_MAX_ATTEMPTS. Every
   write is conditional on the claim token, so a drain whose batch was reclaimed writes nothing.

A message left ``processing`` for NOTIFICATIONS_STALE_CLAIM_SECONDS (its drain died between
claim and record) is put back in the queue by the next drain. That is the one case where a
message can go out twice; its Message-ID is stable (``<uuid@domain>``) so receivers can tell.
"""

from __future__ import annotations

import logging
import smtplib
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.redaction import redact
from notifications.email.health import mail_failure_record, mail_success_record
from notifications.email.rendering import message_build
from notifications.models import Notification

logger = logging.getLogger(__name__)
Status = Notification.Status
# Minutes before attempt n + 1 after attempt n failed: 1, 3, 9, then 15 for every further one.
BACKOFF_MINUTES = (1, 3, 9, 15)
ERROR_LIMIT = 2000


def backoff_after(attempt: int) -> timedelta:
    return timedelta(minutes=BACKOFF_MINUTES[min(attempt, len(BACKOFF_MINUTES)) - 1])


@dataclass
class DrainResult:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    reclaimed: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)
    unreachable: str = ""  # why the drain stopped early: the mail server could not be used

    @property
    def deferred(self) -> int:
        """Messages that failed this drain and wait for their retry (the rest are dead)."""
        return self.failed - self.dead

    def summary(self) -> dict:
        summary = {
            "sent": self.sent,
            "failed": self.failed,
            "dead": self.dead,
            "reclaimed": self.reclaimed,
            "batches": self.batches,
        }
        if self.unreachable:
            summary["mail_server_unreachable"] = self.unreachable
        return summary


# --- claim ------------------------------------------------------------------------------


def notifications_claim(*, now: datetime, limit: int) -> tuple[uuid.UUID, list[Notification]]:
    """Claim up to ``limit`` due messages for this process: (claim token, messages by id).

    1. Lock the due ids, oldest first; SKIP LOCKED lets a second drain take the next ones.
    2. Mark them ``processing`` with a fresh token, counting the attempt.
    3. Read them back with the values just written.
    """
    token = uuid.uuid4()
    with transaction.atomic(savepoint=False):  # joins the drain's record-and-claim transaction
        ids = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status__in=Notification.WAITING_STATUSES, send_after__lte=now)
            .order_by("send_after", "id")
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return token, []
        Notification.objects.filter(pk__in=ids).update(
            status=Status.PROCESSING, attempts=F("attempts") + 1, claimed_at=now, claim_token=token, updated_at=now
        )
        claimed = list(Notification.objects.filter(pk__in=ids).order_by("pk"))
    return token, claimed


@transaction.atomic
def notifications_reclaim_stale(*, now: datetime) -> int:
    """Messages whose drain died mid-batch go back to the queue (or die, out of attempts)."""
    stale_before = now - timedelta(seconds=settings.NOTIFICATIONS_STALE_CLAIM_SECONDS)
    stale = Notification.objects.filter(status=Status.PROCESSING, claimed_at__lt=stale_before)
    error = "The sender stopped before recording a result (claimed at {}); re-queued."
    count = 0
    for row in stale.select_for_update(skip_locked=True).only("pk", "attempts", "claimed_at"):
        dead = row.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS
        count += Notification.objects.filter(pk=row.pk, status=Status.PROCESSING).update(
            status=Status.DEAD if dead else Status.RETRYING,
            send_after=now,
            claim_token=None,
            last_error=error.format(f"{row.claimed_at:%Y-%m-%d %H:%M:%S} UTC"),
            updated_at=now,
        )
    return count


# --- send and record --------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")[:ERROR_LIMIT]


def _connection_lost(exc: Exception) -> bool:
    """The connection, not this message, failed: nothing after it can go out on it.

    ``SMTPException`` is an ``OSError``; of those only a disconnect or a 421 ("closing the
    channel") is about the connection. A refused recipient or a rejected body is the message's own.
    """
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    return isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)


def _send_batch(batch: list[Notification]) -> tuple[list[int], list[tuple[Notification, str]], str]:
    """Send each message: (sent ids, [(message, error)], why the server was unusable or "").

    One backend connection per batch, one ``send_messages`` call per message on it, not one
    for the batch: when SMTP fails mid-batch, Django's backend raises without saying which
    messages went out, and retrying those would send them twice. When the server cannot be
    reached, or the connection drops, every message not yet sent fails this attempt.
    """
    sent: list[int] = []
    failed: list[tuple[Notification, str]] = []
    mail = get_connection(fail_silently=False)
    try:
        mail.open()
    except Exception as exc:  # refused, timed out, TLS or login failed: the same for every message
        reason = f"Could not connect to the mail server: {_describe(exc)}"
        return [], [(notification, reason) for notification in batch], reason
    try:
        for index, notification in enumerate(batch):
            try:
                if mail.send_messages([message_build(notification)]) != 1:
                    raise RuntimeError("The e-mail backend did not accept the message.")
            except Exception as exc:  # one message's failure must not stop the batch
                failed.append((notification, _describe(exc)))
                if _connection_lost(exc):
                    reason = f"The mail server connection was lost: {_describe(exc)}"
                    failed += [(rest, f"Not sent: {reason}") for rest in batch[index + 1 :]]
                    return sent, failed, reason
            else:
                sent.append(notification.pk)
    finally:
        try:
            mail.close()
        except Exception:  # a dropped connection may refuse even QUIT; the results stand
            pass
    return sent, failed, ""


def _mine(token: uuid.UUID):
    return Notification.objects.filter(claim_token=token, status=Status.PROCESSING)


def _record(token: uuid.UUID, sent: list[int], failed: list[tuple[Notification, str]], now: datetime, result) -> None:
    """Mark the batch's results; every write is conditional on this drain's claim token."""
    with transaction.atomic(savepoint=False):
        if sent:
            result.sent += (
                _mine(token).filter(pk__in=sent).update(status=Status.SENT, sent_at=now, last_error="", updated_at=now)
            )
        for notification, error in failed:
            dead = notification.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS
            updated = (
                _mine(token)
                .filter(pk=notification.pk)
                .update(
                    status=Status.DEAD if dead else Status.RETRYING,
                    send_after=now if dead else now + backoff_after(notification.attempts),
                    last_error=error,
                    updated_at=now,
                )
            )
            result.dead += updated if dead else 0
            result.failed += updated
            result.errors.append(f"#{notification.pk}: {error[:200]}")


def _log_dead(failed: list[tuple[Notification, str]]) -> None:
    from jobs.operations.logs import system_log

    for notification, error in failed:
        if notification.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
            system_log(
                event="notification_dead",
                level="error",
                message=f"Gave up on notification #{notification.pk} ({notification.template} to "
                f"{notification.recipient}) after {notification.attempts} attempts: {error[:500]}",
                data={"notification_id": notification.pk},
            )


def notifications_process(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    max_seconds: float | None = None,
    max_batches: int | None = None,
) -> DrainResult:
    """Drain due messages until the queue is empty, ``max_seconds`` passed or ``max_batches`` ran.

    ``now`` pins the clock (tests, ``--as-of``); otherwise each batch reads the clock.
    """
    batch_size = batch_size or settings.NOTIFICATIONS_BATCH_SIZE
    max_seconds = settings.NOTIFICATIONS_DRAIN_SECONDS if max_seconds is None else max_seconds
    deadline = time.monotonic() + max_seconds
    clock = (lambda: now) if now is not None else timezone.now
    result = DrainResult(reclaimed=notifications_reclaim_stale(now=clock()))
    token, batch = notifications_claim(now=clock(), limit=batch_size) if max_batches != 0 else (None, [])
    while batch:
        result.batches += 1
        sent, failed, result.unreachable = _send_batch(batch)
        more = (max_batches is None or result.batches < max_batches) and time.monotonic() < deadline
        # An unreachable server fails every message claimed from now on: stop, and let each one's
        # backoff decide when it is tried again.
        more = more and not result.unreachable
        # Record this batch and claim the next in one transaction: one commit per batch.
        with transaction.atomic():
            _record(token, sent, failed, clock(), result)
            token, batch = notifications_claim(now=clock(), limit=batch_size) if more else (None, [])
        _log_dead(failed)
    if result.unreachable:
        logger.warning("notifications drain stopped early: %s", result.unreachable)
        mail_failure_record(now=clock(), deferred=result.deferred, error=result.unreachable)
    elif result.sent:
        mail_success_record(now=clock())
    logger.info("notifications drained %s", result.summary())
    return result


def notifications_due_count(*, now: datetime) -> int:
    return Notification.objects.filter(status__in=Notification.WAITING_STATUSES, send_after__lte=now).count()
