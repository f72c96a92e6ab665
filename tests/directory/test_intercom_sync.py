"""intercom-sync against a local stand-in for Intercom's API (tests/directory/intercom_server.py)."""

from __future__ import annotations

import io
import logging
from datetime import datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from directory import intercom_sync
from directory.models import IntercomContact, Member

from .intercom_server import IntercomStandIn

pytestmark = pytest.mark.django_db

TOKEN = "dG9rOmludGVyY29tLXRlc3QtdG9rZW4tMTIzNDU2"
NOW = timezone.make_aware(datetime(2025, 3, 2, 8, 0))


@pytest.fixture
def intercom(settings):
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True  # the stand-in listens on 127.0.0.1
    settings.INTERCOM_ACCESS_TOKEN = TOKEN
    settings.INTERCOM_RETRY_BASE_SECONDS = 0.01
    server = IntercomStandIn(TOKEN)
    settings.INTERCOM_API_BASE = server.url
    yield server
    server.stop()


def member(number: str, status: str = "active", **fields) -> Member:
    fields.setdefault("email", f"{number.lower()}@example.com")
    if not fields.get("is_active", True):
        fields["deactivated_at"] = NOW
    return Member.objects.create(
        member_number=number,
        first_name="Ana",
        last_name="Lopez",
        status=status,
        source_updated_at=NOW,
        synced_at=NOW,
        **fields,
    )


def run(*args: str) -> dict:
    return call_command("intercom_sync", *args, stdout=io.StringIO())


def test_it_pushes_active_and_retired_members_as_tagged_contacts(intercom):
    member("A1")
    member("R1", "retired", phone="555-0101")
    member("T1", "terminated")
    member("GONE", is_active=False)

    summary = run()

    assert (summary["created"], summary["read"]) == (2, 2)
    contacts = intercom.by_external_id()
    assert set(contacts) == {"A1", "R1"}
    assert contacts["R1"]["name"] == "Ana Lopez" and contacts["R1"]["phone"] == "555-0101"
    assert intercom.tag_names(contacts["A1"]["id"]) == {"Active"}
    assert intercom.tag_names(contacts["R1"]["id"]) == {"Retired"}
    assert IntercomContact.objects.get(member__member_number="R1").contact_id == contacts["R1"]["id"]


def test_it_pushes_only_contacts_whose_fields_changed(intercom):
    member("A1")
    member("A2")
    run()
    calls = len(intercom.seen)

    assert run()["unchanged"] == 2
    assert len(intercom.seen) == calls  # nothing sent at all

    Member.objects.filter(member_number="A2").update(email="new@example.com")
    summary = run()

    assert (summary["updated"], summary["unchanged"], summary["created"]) == (1, 1, 0)
    assert intercom.by_external_id()["A2"]["email"] == "new@example.com"
    third = intercom.seen[calls:]
    assert [(c.method, c.path.split("/")[-1]) for c in third if c.path != "/tags"] == [
        ("PUT", "c4"),  # by the stored contact id: no search, no create
        ("POST", "tags"),
    ]


def test_it_moves_the_tag_when_a_member_retires(intercom):
    m = member("A1")
    run()
    Member.objects.filter(pk=m.pk).update(status="retired")

    run()

    assert intercom.tag_names(intercom.by_external_id()["A1"]["id"]) == {"Retired"}


def test_it_waits_for_the_rate_limit_reset_before_retrying(intercom):
    member("A1")
    intercom.fail("POST", "/contacts/search", 429, reset_in=0.5)

    run()

    limited, retried = intercom.calls("POST", "/contacts/search")
    assert limited.status == 429 and retried.status == 200
    assert retried.at >= int(limited.at + 0.5) + 1  # not before X-RateLimit-Reset
    assert len(intercom.contacts) == 1


def test_it_retries_server_errors_with_backoff(intercom):
    member("A1")
    intercom.fail("POST", "/contacts", 503, times=2)

    assert run()["created"] == 1
    assert [c.status for c in intercom.calls("POST", "/contacts")] == [503, 503, 200]


def test_it_does_not_duplicate_a_contact_whose_create_answered_an_error(intercom):
    member("A1")
    intercom.fail("POST", "/contacts", 500, after_create=True)  # stored by Intercom, answered 500

    run()

    assert len(intercom.contacts) == 1
    assert IntercomContact.objects.get().contact_id == next(iter(intercom.contacts))


def test_it_finds_the_contact_created_before_a_crash_instead_of_creating_another(intercom, monkeypatch):
    member("A1")

    def crash(**kwargs):
        raise KeyboardInterrupt  # the worker dies between Intercom's create and our record

    monkeypatch.setattr(intercom_sync, "contact_record", crash)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.undo()
    assert len(intercom.contacts) == 1 and not IntercomContact.objects.exists()

    summary = run()

    assert (summary["created"], summary["updated"]) == (0, 1)
    assert len(intercom.contacts) == 1
    assert IntercomContact.objects.get().contact_id == next(iter(intercom.contacts))


def test_it_fails_clearly_without_a_token(settings):
    settings.INTERCOM_ACCESS_TOKEN = ""
    member("A1")
    with pytest.raises(CommandError, match="INTERCOM_ACCESS_TOKEN is not set"):
        run()


def test_it_fails_and_names_the_status_when_intercom_keeps_refusing(intercom, settings, caplog):
    settings.INTERCOM_MAX_ATTEMPTS = 2
    member("A1")
    member("A2")
    intercom.fail("POST", "/contacts", 500, times=2)

    with caplog.at_level(logging.WARNING), pytest.raises(CommandError, match="1 of 2 members could not be pushed"):
        run()

    assert set(intercom.by_external_id()) == {"A2"}  # the other member was still pushed
    assert TOKEN not in caplog.text


def test_it_sends_nothing_to_a_refused_address(intercom, settings):
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = False
    member("A1")

    with pytest.raises(CommandError, match="Refused"):
        run()
    assert intercom.seen == []


def test_it_reports_what_it_would_push_on_a_dry_run(intercom):
    member("A1")
    summary = run("--dry-run")
    assert summary["created"] == 1 and summary["dry_run"] is True
    assert intercom.seen == [] and not IntercomContact.objects.exists()
