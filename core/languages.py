"""The languages customer e-mails are shipped in, for the ``language`` fields of the apps whose
people receive them (blank there means "inherit")."""

from __future__ import annotations

from django.conf import settings


def language_choices() -> list[tuple[str, str]]:
    """``settings.LANGUAGES``, read when a form or the admin asks: adding a language to the
    setting needs no migration."""
    return list(settings.LANGUAGES)
