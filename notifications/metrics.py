"""The notification queue's depth on ``/metrics``: ``cronhouse_notifications{status}`` and
``cronhouse_webhook_deliveries{status}``, registered into ``jobs.operations.metrics``'s registry (the
notifications app depends on jobs, never the other way round). Imported by ``alerts.py``."""

from __future__ import annotations

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from notifications.models import Notification, WebhookDelivery


class NotificationQueueCollector:
    def collect(self):
        for name, model, doc in (
            ("cronhouse_notifications", Notification, "E-mail notifications by status."),
            ("cronhouse_webhook_deliveries", WebhookDelivery, "Outgoing webhook deliveries by status."),
        ):
            family = GaugeMetricFamily(name, doc, labels=["status"])
            counts = dict(model.objects.values_list("status").annotate(n=Count("id")).order_by())
            for status in model.Status.values:
                family.add_metric([status], counts.get(status, 0))
            yield family
