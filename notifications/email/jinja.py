"""The Jinja2 environment e-mails render with: the ``emails`` engine in ``settings.TEMPLATES``
(Django's ``django.template.backends.jinja2.Jinja2`` backend calls ``environment()``).

* Autoescaping is on for ``.html`` templates and off for ``.txt`` (plain text must not say
  ``&amp;``).
* The ``i18n`` extension with Django's ``gettext`` / ``ngettext`` installed (new style), so
  ``{{ _("Run") }}``, ``{% trans %}`` and ``{% trans count=n %}`` follow
  ``translation.override()`` and share Django's catalogues.
* A missing variable prints as nothing (``jinja2.Undefined``, even with DEBUG on, where Django's
  backend would pick ``DebugUndefined``), and a template's last newline is kept.
* ``absolute_url("admin:jobs_jobrun_change", run_id)`` builds a link to a named URL from
  SITE_URL; ``pluralize`` is Django's filter.
* Filters that format for the active language (contexts are JSON, so dates and amounts arrive
  as ISO strings): ``localdate`` ("Dec. 6, 2026" / "6. Dezember 2026"), ``number`` (two
  places, grouped: "1,234.50" / "1.234,50") and ``money`` (``number`` with the currency sign
  where the language puts it: "$1,234.50" / "1.234,50 $").
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import jinja2
from django.conf import settings
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import translation
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.formats import date_format, number_format


def absolute_url(view_name: str, *args) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(view_name, args=args)


class LocalizedFloat(float):
    """A float that prints with the active language's decimal separator, as Django prints one.

    Printing goes through ``str()`` both in ``{{ value }}`` and in ``{% trans %}`` variables,
    and unlike a pre-formatted string the value still compares and adds as a number.
    """

    __slots__ = ()

    def __str__(self) -> str:
        return number_format(float(self))


def localize_floats(values: dict) -> dict:
    """``values`` with its floats wrapped in LocalizedFloat (JSON contexts hold no Decimal or date)."""
    return {name: LocalizedFloat(value) if type(value) is float else value for name, value in values.items()}


def localdate(value) -> str:
    """A date, or the date part of an ISO date or date-time, in the language's DATE_FORMAT."""
    if isinstance(value, str):
        value = parse_datetime(value) or parse_date(value[:10])
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        return ""
    return date_format(value, "DATE_FORMAT", use_l10n=True)


def number(value) -> str:
    """An amount with two places, grouped, with the language's separators."""
    if value in (None, ""):
        return ""
    return number_format(Decimal(str(value)), decimal_pos=2, use_l10n=True, force_grouping=True)


def money(value) -> str:
    """An amount of the site's currency (US dollars), as the language writes it."""
    if value in (None, ""):
        return ""
    # Translators: a US dollar amount; put the sign where your language writes it.
    return translation.gettext("$%(amount)s") % {"amount": number(value)}


def environment(**options) -> jinja2.Environment:
    options.update(
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=jinja2.Undefined,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env = jinja2.Environment(**options)
    env.install_gettext_callables(translation.gettext, translation.ngettext, newstyle=True)
    env.globals["absolute_url"] = absolute_url
    env.filters["pluralize"] = pluralize
    env.filters["localdate"] = localdate
    env.filters["number"] = number
    env.filters["money"] = money
    return env
