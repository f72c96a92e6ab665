"""The admin screens staff use for the queue and the webhooks."""

from __future__ import annotations

import pytest

from jobs.operations.logs import system_log
from notifications.models import Notification, WebhookDelivery, WebhookEndpoint
from notifications.services import notification_enqueue

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(admin_client):
    return admin_client


def queued(**overrides) -> Notification:
    values = {"recipient": "tenant@example.com", "template": "notifications/test_message", "context": {"label": "x"}}
    return notification_enqueue(**{**values, **overrides})


def test_it_lists_the_queue_filters_by_status_and_searches_by_recipient(staff):
    queued(recipient="alice@example.com")
    dead = queued(recipient="bob@example.com")
    Notification.objects.filter(pk=dead.pk).update(status=Notification.Status.DEAD, last_error="SMTP 550 mailbox full")

    page = staff.get("/admin/notifications/notification/?status__exact=dead").content.decode()
    assert "bob@example.com" in page and "SMTP 550 mailbox full" in page and "alice@example.com" not in page
    page = staff.get("/admin/notifications/notification/?q=alice").content.decode()
    assert "alice@example.com" in page and "bob@example.com" not in page


def test_it_shows_the_rendered_message(staff, settings):
    settings.SITE_URL = "https://ops.example.com"
    notification = queued(context={"label": "Statement <7> is ready"})
    page = staff.get(f"/admin/notifications/notification/{notification.pk}/change/").content.decode()
    assert "[Cronhouse] Test message Statement &lt;7&gt; is ready" in page
    assert "https://ops.example.com/admin/" in page
    assert 'sandbox=""' in page  # the HTML part is shown in a sandboxed frame


def test_it_retries_and_cancels_from_the_list(staff):
    dead = queued(recipient="dead@example.com")
    Notification.objects.filter(pk=dead.pk).update(status=Notification.Status.DEAD, attempts=5)
    waiting = queued(recipient="waiting@example.com")

    url = "/admin/notifications/notification/"
    staff.post(url, {"action": "retry", "_selected_action": [dead.pk]})
    staff.post(url, {"action": "cancel", "_selected_action": [waiting.pk]})

    dead.refresh_from_db()
    waiting.refresh_from_db()
    assert (dead.status, dead.attempts) == (Notification.Status.QUEUED, 0)
    assert waiting.status == Notification.Status.CANCELLED


def test_it_refuses_an_internal_webhook_url_in_the_endpoint_form(staff):
    response = staff.post(
        "/admin/notifications/webhookendpoint/add/",
        {
            "name": "meta",
            "url": "http://169.254.169.254/latest/",
            "events": '["*"]',
            "active": "on",
            "secret": "s" * 20,
        },
    )
    assert response.status_code == 200
    assert "cloud metadata address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_it_shows_deliveries_and_the_system_log(staff):
    hook = WebhookEndpoint.objects.create(name="erp", url="https://erp.example.com/hook", events=["*"])
    from django.utils import timezone

    delivery = WebhookDelivery.objects.create(
        endpoint=hook, event="payout.created", payload={"payout_id": 9}, next_attempt_at=timezone.now()
    )
    system_log(event="purge_logs", message="Purged old rows: job_runs=3.")
    assert "payout.created" in staff.get("/admin/notifications/webhookdelivery/").content.decode()
    assert "payout_id" in staff.get(f"/admin/notifications/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "Purged old rows" in staff.get("/admin/jobs/systemlog/").content.decode()
