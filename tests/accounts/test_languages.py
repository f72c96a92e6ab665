"""Customer e-mails in the recipient's language: the member's own, else the organization's,
else LANGUAGE_CODE; stored on the queued message, so a retry keeps it."""

from __future__ import annotations

import socket
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from accounts.models import Account, CreditBalance, Membership
from tests.job_commands import at, drain, queued, run

pytestmark = pytest.mark.django_db
NOW = at("2025-03-01", 8)


def member(account: Account, *, language: str = "") -> Membership:
    """A member whose login e-mail is the organization's address, so its e-mails reach them."""
    user = get_user_model().objects.create_user(username=f"user-{account.pk}", email=account.email.upper())
    return Membership.objects.create(account=account, user=user, joined_at=NOW, language=language)


def trial_ending(build, *, account_language: str = "", member_language: str | None = None) -> Account:
    account = build.account()
    Account.objects.filter(pk=account.pk).update(language=account_language)
    if member_language is not None:
        member(account, language=member_language)
    build.subscription(
        account=account, plan=build.plan("pro", price="1234.50"), status="trial", trial_ends_at=NOW + timedelta(days=3)
    )
    return account


def test_it_writes_to_a_member_who_chose_german_in_german(build, outbox):
    trial_ending(build, member_language="de")
    run("trial_reminders", "--as-of", NOW.isoformat())
    drain()

    [message] = outbox
    assert message.subject == "Ihre Pro-Testphase endet in 3 Tagen"
    assert message.body.startswith("Hallo Account 1,\n")
    assert "Ihre kostenlose Testphase des Tarifs Pro endet am 4. März 2025." in message.body
    assert "(1.234,50 $ im Monat)" in message.body
    html = message.alternatives[0][0]
    assert '<html lang="de">' in html and "4. März 2025" in html


def test_it_writes_in_the_organizations_language_to_a_member_who_chose_none(build, outbox):
    trial_ending(build, account_language="de", member_language="")
    run("trial_reminders", "--as-of", NOW.isoformat())
    drain()

    [message] = outbox
    assert message.subject == "Ihre Pro-Testphase endet in 3 Tagen"
    assert queued()[0].language == "de"


def test_it_writes_in_english_when_neither_the_member_nor_the_organization_chose(build, outbox, settings):
    trial_ending(build, member_language="")
    trial_ending(build)  # no member with the organization's address at all
    run("trial_reminders", "--as-of", NOW.isoformat())
    drain()

    assert [m.subject for m in outbox] == ["Your Pro trial ends in 3 days"] * 2
    assert "ends on March 4, 2025." in outbox[0].body
    assert "($1,234.50 a month)" in outbox[0].body
    assert {m.language for m in queued()} == {settings.LANGUAGE_CODE}


def test_it_prefers_the_members_own_language_to_the_organizations(build, outbox):
    trial_ending(build, account_language="de", member_language="en")
    run("trial_reminders", "--as-of", NOW.isoformat())
    drain()

    assert [m.subject for m in outbox] == ["Your Pro trial ends in 3 days"]


def test_it_formats_amounts_for_the_language(build, outbox):
    german, english = build.account(), build.account()
    Account.objects.filter(pk=german.pk).update(language="de")
    for account in (german, english):
        CreditBalance.objects.create(account=account, balance=Decimal("1049.99"), threshold=Decimal("2000.00"))
    run("check_low_credits_alerts", "--as-of", NOW.isoformat())
    drain()

    by_recipient = {m.to[0]: m for m in outbox}
    assert by_recipient[german.email].subject == "Ihr Guthaben ist niedrig"
    assert "Ihr Guthaben beträgt 1.049,99 und liegt damit unter den 2.000,00" in by_recipient[german.email].body
    assert by_recipient[english.email].subject == "Your credit balance is low"
    assert "Your credit balance is 1,049.99, below the 2,000.00" in by_recipient[english.email].body


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_it_retries_a_german_message_in_german_after_the_member_changed_language(build, outbox, settings):
    account = trial_ending(build, member_language="de")
    run("trial_reminders", "--as-of", NOW.isoformat())

    # The first attempt meets no mail server, so the message waits for its retry.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _closed_port(), 2
    drain()
    [waiting] = queued()
    assert (waiting.status, waiting.attempts) == ("retrying", 1)

    Membership.objects.filter(account=account).update(language="en")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from notifications.email.mailer import notifications_process

    notifications_process(now=waiting.send_after + timedelta(seconds=1))

    [message] = outbox
    assert message.subject == "Ihre Pro-Testphase endet in 3 Tagen"
    waiting.refresh_from_db()
    assert waiting.status == "sent"


def test_it_looks_up_languages_in_two_queries_however_many_recipients(build, django_assert_num_queries, settings):
    from accounts.languages import messages_localized

    accounts = [build.account() for _ in range(30)]
    for account in accounts[::2]:
        member(account, language="de")
    messages = [(a.pk, {"recipient": a.email, "template": "accounts/low_credits"}) for a in accounts]

    with django_assert_num_queries(2):
        languages = [m["language"] for m in messages_localized(messages)]

    assert languages == ["de", settings.LANGUAGE_CODE] * 15
