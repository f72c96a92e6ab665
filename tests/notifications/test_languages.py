"""The shipped German catalogue covers every sentence of the customer e-mails."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.template import engines
from django.utils import translation

CUSTOMER_EMAILS = ("accounts", "billing")


def _sentences() -> list[tuple[str, str | tuple[str, str]]]:
    environment = engines["emails"].env
    found = []
    for folder in CUSTOMER_EMAILS:
        for path in sorted((Path(settings.BASE_DIR) / "templates" / "emails" / folder).rglob("*.*")):
            for _line, _function, message in environment.extract_translations(path.read_text(encoding="utf-8")):
                found.append((str(path.relative_to(settings.BASE_DIR)), message))
    return found


def test_it_finds_the_sentences_of_the_customer_emails():
    assert len({message for _, message in _sentences()}) > 50


@pytest.mark.parametrize("place, message", _sentences(), ids=lambda value: str(value)[:60])
def test_it_ships_every_customer_email_sentence_in_german(place, message):
    with translation.override("de"):
        singular, plural = (message, None) if isinstance(message, str) else message[:2]
        if plural:
            translated = (translation.ngettext(singular, plural, 1), translation.ngettext(singular, plural, 3))
            assert translated != (singular, plural), place
        else:
            assert translation.gettext(singular) != singular, place
