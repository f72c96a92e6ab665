"""Celery adapters: take ids, call a service."""

from __future__ import annotations

from celery import shared_task

from notifications.channels.sending import DELIVER_TASK as ALERT_DELIVER_TASK
from notifications.channels.sending import alert_deliver
from notifications.webhooks import DELIVER_TASK, webhook_deliver


@shared_task(name=DELIVER_TASK, ignore_result=True)
def webhook_deliver_task(delivery_id: int) -> None:
    webhook_deliver(delivery_id=delivery_id)


@shared_task(name=ALERT_DELIVER_TASK, ignore_result=True)
def alert_deliver_task(delivery_id: int) -> None:
    alert_deliver(delivery_id=delivery_id)
