"""Outgoing webhooks: one delivery per subscribed endpoint, signed, sent after commit, retried, bounded."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from celery import current_app
from django.db import transaction
from django.utils import timezone

from notifications.models import WebhookDelivery, WebhookEndpoint
from notifications.services import webhook_event_send
from notifications.webhooks import (
    DELIVER_TASK,
    InvalidSignature,
    webhook_deliveries_retry,
    webhook_signature,
    webhook_signature_verify,
    webhooks_retry_due,
)
from tests.notifications.conftest import json_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_network")]
Status = WebhookDelivery.Status


def endpoint(url: str, events=("payout.created",), **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(name=fields.pop("name", url), url=url, events=list(events), **fields)


def test_it_signs_each_request_and_a_receiver_on_loopback_verifies_it(
    receiver, allow_loopback, inline_worker, django_capture_on_commit_callbacks
):
    hook = endpoint(receiver.url("/hook"))
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_event_send(event="payout.created", payload={"payout_id": 42, "amount": "1250.00"}) == 1
        assert receiver.requests == []  # nothing leaves before the caller commits

    [request] = receiver.requests
    timestamp = webhook_signature_verify(
        secret=hook.secret, header=request.headers["Cronhouse-Signature"], body=request.body
    )
    assert abs(timestamp - time.time()) < 60
    delivery = WebhookDelivery.objects.get()
    assert json_body(request) == {
        "id": str(delivery.uuid),
        "event": "payout.created",
        "created_at": delivery.created_at.isoformat(),
        "data": {"payout_id": 42, "amount": "1250.00"},
    }
    assert request.headers["Cronhouse-Event"] == "payout.created"
    assert request.headers["Cronhouse-Delivery"] == str(delivery.uuid)
    assert request.headers["Content-Type"] == "application/json"
    assert (delivery.status, delivery.attempts, delivery.response_status) == (Status.DELIVERED, 1, 200)
    assert delivery.response_body == '{"ok": true}' and delivery.duration is not None


def test_it_records_one_delivery_per_active_subscribed_endpoint(celery_sends, django_capture_on_commit_callbacks):
    a = endpoint("https://a.example.com/hook", events=["payout.created"], name="a")
    b = endpoint("https://b.example.com/hook", events=["billing.*"], name="b")
    endpoint("https://c.example.com/hook", events=["*"], name="c", active=False)
    endpoint("https://d.example.com/hook", events=["invoice.paid"], name="d")

    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_event_send(event="payout.created", payload={}) == 1
        assert webhook_event_send(event="billing.statement_ready", payload={}) == 1
    assert sorted(WebhookDelivery.objects.values_list("endpoint__name", "event")) == [
        ("a", "payout.created"),
        ("b", "billing.statement_ready"),
    ]
    assert [s["name"] for s in celery_sends] == [DELIVER_TASK, DELIVER_TASK]
    assert {a.pk, b.pk} == set(WebhookDelivery.objects.values_list("endpoint", flat=True))


def test_it_records_and_sends_nothing_when_the_callers_transaction_rolls_back(
    celery_sends, django_capture_on_commit_callbacks
):
    endpoint("https://a.example.com/hook")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            webhook_event_send(event="payout.created", payload={})
            raise RuntimeError("caller failed")
    assert WebhookDelivery.objects.count() == 0
    assert celery_sends == []


def test_it_retries_a_failing_receiver_with_backoff_and_gives_up_after_three_attempts(
    receiver, allow_loopback, inline_worker, django_capture_on_commit_callbacks, settings
):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.route("/hook", 503, body=b"maintenance")
    endpoint(receiver.url("/hook"))
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_send(event="payout.created", payload={"n": 1})
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (Status.RETRYING, 1, 503)
    assert delivery.last_error.startswith("HTTP 503") and delivery.response_body == "maintenance"
    first_wait = delivery.next_attempt_at - timezone.now()
    assert timedelta(seconds=55) < first_wait <= timedelta(seconds=60)
    # Event-driven retry: the worker got a message with the backoff as its countdown.
    assert inline_worker[-1]["countdown"] == 60

    assert webhooks_retry_due(now=delivery.next_attempt_at - timedelta(seconds=5))["attempted"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks_retry_due(now=delivery.next_attempt_at)["retrying"] == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and inline_worker[-1]["countdown"] == 300  # 1 min, then 5 min

    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks_retry_due(now=delivery.next_attempt_at)["dead"] == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.DEAD, 3)
    assert webhooks_retry_due(now=timezone.now() + timedelta(days=2))["attempted"] == 0
    assert len(receiver.requests) == 3
    assert len({r.headers["Cronhouse-Delivery"] for r in receiver.requests}) == 1

    # Staff retry: a fresh attempt budget, sent on commit.
    receiver.route("/hook", 204)
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_deliveries_retry(delivery_ids=[delivery.pk]) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (Status.DELIVERED, 1, 204)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/", "http://10.0.0.1/", "http://169.254.169.254/", "http://internal.example.test/"],
)
def test_it_refuses_an_internal_destination_and_marks_the_delivery_dead_at_once(
    url, inline_worker, django_capture_on_commit_callbacks, no_network
):
    no_network.resolve("internal.example.test", ["192.168.0.10"])
    endpoint(url)
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_send(event="payout.created", payload={})
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.DEAD and delivery.attempts == 1
    assert delivery.last_error.startswith("Refused") and delivery.response_status is None
    assert no_network.connects == []


def test_it_refuses_a_redirect_to_a_private_address(
    receiver, allow_loopback, inline_worker, django_capture_on_commit_callbacks
):
    receiver.route("/hook", 302, headers={"Location": "http://10.0.0.1/steal"})
    endpoint(receiver.url("/hook"))
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_send(event="payout.created", payload={})
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.DEAD and "10.0.0.1" in delivery.last_error
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_it_sends_a_delivery_whose_message_was_lost_on_the_next_retry_run(
    receiver, allow_loopback, celery_sends, django_capture_on_commit_callbacks
):
    endpoint(receiver.url("/hook"))
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_send(event="payout.created", payload={})
    assert len(celery_sends) == 1 and receiver.requests == []  # published, never consumed
    assert webhooks_retry_due()["delivered"] == 1
    assert WebhookDelivery.objects.get().status == Status.DELIVERED


def test_it_delivers_in_this_process_when_the_broker_is_down(
    receiver, allow_loopback, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("redis is down")

    monkeypatch.setattr(current_app, "send_task", broker_down)
    endpoint(receiver.url("/hook"))
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_send(event="payout.created", payload={})
    assert WebhookDelivery.objects.get().status == Status.DELIVERED


def test_it_rejects_tampering_wrong_secrets_and_replays_in_the_verification_helper():
    body = b'{"event":"payout.created"}'
    now = 1_800_000_000
    header = webhook_signature(secret="whsec_test", timestamp=now, body=body)
    assert webhook_signature_verify(secret="whsec_test", header=header, body=body, now=now + 10) == now

    for secret, sent_body, at, message in [
        ("whsec_test", body + b" ", now, "does not match"),
        ("whsec_other", body, now, "does not match"),
        ("whsec_test", body, now + 301, "tolerance"),
    ]:
        with pytest.raises(InvalidSignature, match=message):
            webhook_signature_verify(secret=secret, header=header, body=sent_body, now=at)
    for bad in ["", "t=abc,v1=00", "v1=00", f"t={now}"]:
        with pytest.raises(InvalidSignature):
            webhook_signature_verify(secret="whsec_test", header=bad, body=body, now=now)
    # Several v1 values (secret rotation): any match is enough.
    rotated = f"{header},v1={'0' * 64}"
    assert webhook_signature_verify(secret="whsec_test", header=rotated, body=body, now=now) == now
