"""Celery adapters: take ids, call a service."""

from __future__ import annotations

from celery import shared_task

from .webhooks import DELIVER_TASK, webhook_deliver


@shared_task(name=DELIVER_TASK, ignore_result=True)
def webhook_deliver_task(delivery_id: int) -> None:
    webhook_deliver(delivery_id=delivery_id)
