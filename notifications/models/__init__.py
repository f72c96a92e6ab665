"""The notifications app's tables: the notification queue, e-mail and webhook deliveries (``queue``)
and the alert channels with their routes, deliveries and thresholds (``channels``)."""

from notifications.models.channels import AlertChannel, AlertDelivery, AlertRoute, AlertThreshold
from notifications.models.queue import MailServerState, Notification, NotificationKey, WebhookDelivery, WebhookEndpoint

__all__ = [
    "AlertChannel",
    "AlertDelivery",
    "AlertRoute",
    "AlertThreshold",
    "MailServerState",
    "Notification",
    "NotificationKey",
    "WebhookDelivery",
    "WebhookEndpoint",
]
