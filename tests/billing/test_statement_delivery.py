"""Owner statements reach their owners: e-mailed with the PDF, once, again on request, or as a link."""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.core import signing

from billing.models import OwnerStatement
from billing.models.statements import StatementDelivery
from billing.services.payments import payment_record
from jobs.models import AuditEntry
from tests.job_commands import drain, run

pytestmark = pytest.mark.django_db


@pytest.fixture
def statements(build) -> list[OwnerStatement]:
    """January statements of two owners, rendered by generate-statements."""
    for name in ("Alice Owner", "Bob Owner"):
        lease = build.lease(rent="1000.00", unit=build.unit(build.property(build.owner(name=name))))
        run("generate_charges", "--as-of", "2025-01-01")
        payment_record(lease=lease, amount=Decimal("1000.00"), received_on=lease.start_date.replace(year=2025))
    run("generate_statements", "--as-of", "2025-02-01T08:00:00")
    return list(OwnerStatement.objects.select_related("owner").order_by("owner__name"))


def test_it_emails_each_owner_the_statement_with_the_pdf_attached(statements, outbox):
    drain()
    assert sorted(m.to[0] for m in outbox) == sorted(s.owner.email for s in statements)
    for message in outbox:
        assert message.subject == "Your owner statement for January 2025 is ready"
        [(filename, content, mimetype)] = message.attachments
        assert (filename, mimetype) == ("statement-2025-01.pdf", "application/pdf")
        assert content.startswith(b"%PDF-")
        assert "attached to this e-mail as a PDF" in message.body
        assert "property manager" not in message.body
    assert StatementDelivery.objects.filter(kind="monthly").count() == 2


def test_it_sends_nothing_new_when_statements_are_generated_again(statements, outbox):
    drain()
    run("generate_statements", "--as-of", "2025-02-01T09:00:00")
    run("generate_statements", "--as-of", "2025-02-01T10:00:00", "--force")
    drain()
    assert len(outbox) == 2
    assert StatementDelivery.objects.count() == 2


def send_again(client, statement: OwnerStatement):
    data = {"action": "send_again", "_selected_action": [statement.pk]}
    return client.post("/admin/billing/ownerstatement/", data)


def test_it_sends_a_statement_again_from_the_admin_and_shows_each_email(statements, outbox, admin_client):
    drain()
    alice = statements[0]
    assert send_again(admin_client, alice).status_code == 302
    drain()
    assert len(outbox) == 3
    again = outbox[-1]
    assert again.to == [alice.owner.email] and again.attachments[0][1].startswith(b"%PDF-")
    entry = AuditEntry.objects.get(object_type="ownerstatement", object_id=str(alice.pk))
    assert (entry.actor.username, entry.changes["sent_again_to"]) == ("admin", [None, alice.owner.email])
    page = admin_client.get(f"/admin/billing/ownerstatement/{alice.pk}/change/").content.decode()
    assert page.count("Sent again by staff by admin") == 1
    assert page.count("Monthly statement e-mail") == 1
    assert len(re.findall(r"<td>Sent</td>", page)) == 2


def test_it_refuses_send_again_to_staff_without_the_permission(statements, outbox, client):
    drain()
    staff = User.objects.create_user("viewer", password="pw-123456789", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_ownerstatement"))
    client.force_login(staff)
    assert "send_again" not in client.get("/admin/billing/ownerstatement/").content.decode()
    send_again(client, statements[0])
    drain()
    assert len(outbox) == 2
    assert not AuditEntry.objects.filter(object_type="ownerstatement").exists()


def link_in(body: str) -> str:
    return re.search(r"http://testserver(/notifications/files/[^/\s]+/)", body).group(1)


def test_it_sends_a_large_pdf_as_a_signed_link_that_downloads(statements, outbox, settings, client):
    settings.SITE_URL = "http://testserver"
    settings.NOTIFICATIONS_ATTACHMENT_MAX_BYTES = 500  # every statement PDF is larger
    drain()
    message = outbox[0]
    assert message.attachments == []
    path = link_in(message.body)
    assert "The link works until" in message.body
    download = client.get(path)
    assert (download.status_code, download["Content-Type"]) == (200, "application/pdf")
    assert b"".join(download.streaming_content).startswith(b"%PDF-")
    token = path.split("/")[-2]
    tampered = path.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert client.get(tampered).status_code == 404


def test_it_refuses_a_link_past_its_age(statements, outbox, settings, client, monkeypatch):
    settings.SITE_URL = "http://testserver"
    settings.NOTIFICATIONS_ATTACHMENT_MAX_BYTES = 500

    class FifteenDaysAgo:
        @staticmethod
        def time() -> float:
            return time.time() - 15 * 24 * 3600

    monkeypatch.setattr(signing, "time", FifteenDaysAgo)  # the e-mail went out 15 days ago
    drain()
    monkeypatch.undo()
    response = client.get(link_in(outbox[0].body))
    assert response.status_code == 410
    assert b"expired" in response.content


def test_it_refuses_to_queue_an_attachment_from_a_storage_not_allowed(build):
    from notifications.services import notification_enqueue

    with pytest.raises(ValueError, match="NOTIFICATIONS_ATTACHMENT_STORAGES"):
        notification_enqueue(
            recipient="owner@example.com",
            template="billing/statement_ready",
            context={},
            attachments=[{"storage": "default", "name": "settings.py"}],
        )
