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
"""

from __future__ import annotations

import jinja2
from django.conf import settings
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import translation
from django.utils.formats import number_format


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
    return env
