"""The language a customer e-mail is written in: the recipient member's own language, else
the organization's, else ``settings.LANGUAGE_CODE``.

Every accounts job resolves it here when it queues a message and stores it on the queued row
(``Notification.language``), so a retry, however late, renders the same language even if
someone changed theirs in between. No job names a language itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

from django.conf import settings
from django.db.models.functions import Lower

from .models import Account, Membership

BATCH = 1000


def recipient_languages(recipients: Iterable[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """{(account id, address lower-cased): language} for each (account id, e-mail address).

    Two queries however many recipients: the members of those accounts with those addresses
    who chose a language, and the accounts' own languages.
    """
    pairs = {(account_id, email.lower()) for account_id, email in recipients}
    account_ids = {account_id for account_id, _ in pairs}
    emails = {email for _, email in pairs}
    organization = dict(Account.objects.filter(pk__in=account_ids).exclude(language="").values_list("pk", "language"))
    personal = {
        (account_id, email): language
        for account_id, email, language in Membership.objects.filter(account_id__in=account_ids)
        .exclude(language="")
        .annotate(address=Lower("user__email"))
        .filter(address__in=emails)
        .values_list("account_id", "address", "language")
    }
    return {pair: personal.get(pair) or organization.get(pair[0]) or settings.LANGUAGE_CODE for pair in pairs}


def messages_localized(messages: Iterable[tuple[int, dict]]) -> Iterator[dict]:
    """Each (account id, message) as the message with its recipient's ``language`` set,
    looked up a thousand at a time so a long stream stays flat in memory and queries."""
    iterator = iter(messages)
    while batch := list(islice(iterator, BATCH)):
        languages = recipient_languages((account_id, message["recipient"]) for account_id, message in batch)
        for account_id, message in batch:
            yield {**message, "language": languages[(account_id, message["recipient"].lower())]}
