"""A mail server that cannot be reached, or that drops the connection mid-batch: the messages not
sent back off (1 minute first), the sent ones are recorded sent exactly once, and the
process-notifications run succeeds, saying in its summary why it stopped early."""

from __future__ import annotations

import re
import socket
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import JobRun
from jobs.running.runner import run_execute, run_trigger
from notifications.email.mailer import notifications_process
from notifications.models import Notification
from notifications.services import notifications_enqueue_many
from tests.process_group import free_port

pytestmark = pytest.mark.django_db
Status = Notification.Status
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class DroppingSMTPServer:
    """A minimal SMTP server on 127.0.0.1 that accepts ``accept`` messages per connection, then
    closes the connection when the next one starts (``accept=None``: accepts every message).
    ``received`` holds the Message-ID of every message it answered 250 to."""

    def __init__(self, accept: int | None) -> None:
        self.accept = accept
        self.received: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                self._session(conn.makefile("rb"), conn)

    def _session(self, lines, conn) -> None:
        conn.sendall(b"220 test ESMTP\r\n")
        accepted = 0
        for line in lines:
            verb = line[:4].upper()
            if verb == b"MAIL" and self.accept is not None and accepted >= self.accept:
                return  # drop the connection as this message starts
            if verb == b"EHLO":
                conn.sendall(b"250-test\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                body = b"".join(iter(lines.readline, b".\r\n"))
                self.received.append(MESSAGE_ID.search(body).group(1).decode())
                accepted += 1
                conn.sendall(b"250 accepted\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def smtp_to(settings):
    def point_at(port: int) -> None:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False

    return point_at


def enqueue(count: int) -> list[Notification]:
    notifications_enqueue_many(
        messages=[
            {"recipient": f"r{i}@example.com", "template": "notifications/test_message", "context": {}}
            for i in range(count)
        ]
    )
    return list(Notification.objects.order_by("pk"))


def test_it_backs_off_every_message_and_the_run_succeeds_when_the_mail_server_is_unreachable(smtp_to, make_job):
    smtp_to(free_port())  # nothing listens there: the connection is refused
    enqueue(5)
    job = make_job("process-notifications", command="process_notifications", interval_seconds=30)

    before = timezone.now()
    run = run_execute(run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run.pk)
    after = timezone.now()

    assert run.status == JobRun.Status.SUCCEEDED
    assert "Could not connect to the mail server" in run.summary["mail_server_unreachable"]
    assert run.summary["failed"] == 5 and run.summary["sent"] == 0
    for notification in Notification.objects.all():
        assert notification.status == Status.RETRYING and notification.attempts == 1
        assert before + timedelta(minutes=1) <= notification.send_after <= after + timedelta(minutes=1)
        assert "ConnectionRefusedError" in notification.last_error


def test_it_sends_each_message_once_when_the_server_drops_the_connection_mid_batch(smtp_to):
    server = DroppingSMTPServer(accept=3)
    smtp_to(server.port)
    queued = enqueue(8)
    now = timezone.now()
    try:
        first = notifications_process(now=now)
        assert (first.sent, first.failed) == (3, 5)
        assert "connection was lost" in first.summary()["mail_server_unreachable"]
        by_status = {n.pk: n for n in Notification.objects.all()}
        assert [by_status[n.pk].status for n in queued] == [Status.SENT] * 3 + [Status.RETRYING] * 5
        assert all(by_status[n.pk].send_after == now + timedelta(minutes=1) for n in queued[3:])

        server.accept = None  # the server is healthy again
        second = notifications_process(now=now + timedelta(minutes=1))
        assert (second.sent, second.failed, "mail_server_unreachable" in second.summary()) == (5, 0, False)
    finally:
        server.close()

    assert len(server.received) == 8 and len(set(server.received)) == 8
    assert set(Notification.objects.values_list("status", flat=True)) == {Status.SENT}
