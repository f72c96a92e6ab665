"""What the two outgoing queues share, alert deliveries (``notifications.channels.sending``) and
webhook deliveries (``notifications.webhooks``): which deliveries are due for an attempt, and
handing a delivery to a worker, or sending it here when the broker is away."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import models
from django.db.models import Q

logger = logging.getLogger(__name__)


def attempt_due(model: type[models.Model], now: datetime) -> Q:
    """Deliveries of ``model`` due for an attempt at ``now``: waiting and due, or claimed by a
    sender that has not finished within NOTIFICATIONS_STALE_CLAIM_SECONDS (it died)."""
    stale = now - timedelta(seconds=settings.NOTIFICATIONS_STALE_CLAIM_SECONDS)
    return Q(status__in=model.WAITING_STATUSES, next_attempt_at__lte=now) | Q(
        status=model.Status.SENDING, claimed_at__lt=stale
    )


def deliveries_dispatch(
    *, task: str, what: str, delivery_ids: list[int], countdown: float | None, deliver_here: Callable[..., object]
) -> None:
    """Send each delivery to a worker (the Celery task ``task``). If the broker is away, an
    attempt due now is made here and now instead; a retry whose message was lost (``countdown``)
    waits for its queue's sweep."""
    for delivery_id in delivery_ids:
        try:
            current_app.send_task(task, args=[delivery_id], countdown=countdown)
        except Exception as exc:  # kombu raises many types for one meaning: not sent
            logger.warning("%s dispatch failed delivery=%s (%s)", what, delivery_id, type(exc).__name__)
            if countdown is None:
                deliver_here(delivery_id=delivery_id)
