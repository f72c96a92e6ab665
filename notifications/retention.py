"""purge-logs' share in this app: finished notifications, webhook and alert deliveries past retention."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from jobs.operations.logs import batched_delete
from notifications.models import AlertDelivery, Notification, WebhookDelivery


def on_purge_logs_requested(
    sender, *, now: datetime, days: int | None, batch_size: int, dry_run: bool, **kwargs
) -> dict:
    """Delete (or count, when dry) sent/dead/cancelled messages and delivered/dead deliveries."""
    days = settings.NOTIFICATIONS_RETENTION_DAYS if days is None else days
    cutoff = now - timedelta(days=days)
    querysets = {
        "notifications": Notification.objects.filter(status__in=Notification.FINISHED_STATUSES, created_at__lt=cutoff),
        "webhook_deliveries": WebhookDelivery.objects.filter(
            status__in=WebhookDelivery.FINISHED_STATUSES, created_at__lt=cutoff
        ),
        "alert_deliveries": AlertDelivery.objects.filter(
            status__in=AlertDelivery.FINISHED_STATUSES, created_at__lt=cutoff
        ),
    }
    if dry_run:
        return {label: queryset.count() for label, queryset in querysets.items()}
    return {label: batched_delete(queryset, batch_size=batch_size) for label, queryset in querysets.items()}
