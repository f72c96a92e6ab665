"""Turning a queued notification into an e-mail.

A template name such as ``billing/rent_reminder`` is a folder under ``templates/emails/``
holding three Jinja2 files (healthchecks' layout), read by the ``emails`` engine
(``notifications/jinja.py`` says what the engine does and why it is Jinja2):

    templates/emails/billing/rent_reminder/subject.txt   one line (whitespace and newlines are folded)
    templates/emails/billing/rent_reminder/body.txt      the plain-text body (required)
    templates/emails/billing/rent_reminder/body.html     the HTML alternative (optional)

Each renders with the message's context plus ``site_url``, ``recipient`` and
``notification_id``, inside ``translation.override(language)``: ``{{ _("...") }}`` and
``{% trans %}`` strings come out in the recipient's language where a translation exists, in
English otherwise.

* The ``.txt`` parts render with autoescaping OFF (plain text must not say ``&amp;``); the
  ``.html`` part with autoescaping on.
* ``body.html`` is the message's content only; it is wrapped in ``emails/layout.html`` (which
  gets the subject as ``title`` and the content as ``content``). The layout is rendered once
  per language and cached, so wrapping costs a string join instead of a template inheritance
  walk per message (measured with Django's engine: ``{% extends %}`` more than doubled the HTML
  render time). A ``body.html`` that starts with ``<!DOCTYPE`` or ``<html`` is sent as it is.
* ``{{ absolute_url("admin:jobs_jobrun_change", run_id) }}`` builds a link from ``SITE_URL``;
  ``{{ site_url }}/path/`` joins a path to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby

import jinja2
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import EmailAlternative
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template import engines
from django.utils import translation

from .jinja import Renderer, Variables, escape_html, gettext_for_one_language, localize_floats, render
from .models import Notification

_new = object.__new__
TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*(/[a-z0-9][a-z0-9_\-]*)*$")


class UnknownTemplate(ValueError):
    """The template name is malformed or its subject/body files do not exist."""


def template_path(name: str, part: str) -> str:
    return f"emails/{name}/{part}"


def _engine() -> jinja2.Environment:
    return engines["emails"].env


@lru_cache(maxsize=512)
def _templates(name: str) -> tuple[jinja2.Template, jinja2.Template, jinja2.Template | None]:
    """(subject, text, html-or-None): the compiled templates of one message type.

    One entry serves every language: translations are looked up when a template renders.
    """
    env = _engine()
    subject = env.get_template(template_path(name, "subject.txt"))
    text = env.get_template(template_path(name, "body.txt"))
    try:
        html = env.get_template(template_path(name, "body.html"))
    except jinja2.TemplateNotFound:
        html = None
    return subject, text, html


TITLE_MARK = "@@cronhouse-layout-title@@"
CONTENT_MARK = "@@cronhouse-layout-content@@"


@lru_cache(maxsize=64)
def _layout(language: str, site: str) -> tuple[str, str, str]:
    """emails/layout.html rendered once per language, split around the title and the content."""
    context = {"title": TITLE_MARK, "content": CONTENT_MARK, "site_url": site, "LANGUAGE_CODE": language}
    with translation.override(language):
        page = _engine().get_template("emails/layout.html").render(context)
    head, rest = page.split(TITLE_MARK, 1)
    middle, tail = rest.split(CONTENT_MARK, 1)
    return head, middle, tail


def template_check(name: str) -> None:
    """Raise UnknownTemplate unless ``name`` is a valid folder with a subject and a text body."""
    if not TEMPLATE_NAME.match(name or ""):
        raise UnknownTemplate(f"Bad template name {name!r}: expected a path like 'billing/rent_reminder'.")
    try:
        _templates(name)
    except jinja2.TemplateNotFound as exc:
        raise UnknownTemplate(
            f"Template {name!r} is missing {exc}: give templates/emails/{name}/subject.txt and body.txt."
        ) from None


def template_cache_clear() -> None:
    _templates.cache_clear()
    _layout.cache_clear()


@receiver(setting_changed)
def _templates_setting_changed(*, setting: str, **kwargs) -> None:
    if setting == "TEMPLATES":  # tests that add a template folder
        template_cache_clear()


def site_url() -> str:
    return settings.SITE_URL.rstrip("/")


def message_language(notification: Notification) -> str:
    return notification.language or settings.LANGUAGE_CODE


def message_render(notification: Notification) -> tuple[str, str, str | None]:
    """(subject, text body, html body or None) for one notification, in its language."""
    language = message_language(notification)
    # Usually the active language already (admin preview, tests); checking costs less than switching.
    if translation.get_language() == language:
        return _render(notification, language, site_url())
    with translation.override(language):
        return _render(notification, language, site_url())


def _render(
    notification: Notification, language: str, site: str, render=render, gettexts: dict | None = None
) -> tuple[str, str, str | None]:
    """``render`` is jinja.render, or a batch's jinja.Renderer; ``gettexts`` the memoizing
    gettext globals of the language group being rendered (jinja.gettext_for_one_language)."""
    subject_t, text_t, html_t = _templates(notification.template)
    context = notification.context or {}
    variables = Variables(subject_t.globals)
    if gettexts is not None:
        variables.update(gettexts)
    variables.update(context)
    variables["site_url"] = site
    variables["recipient"] = notification.recipient
    variables["notification_id"] = str(notification.uuid)
    localize_floats(context, into=variables)
    subject = " ".join(render(subject_t, variables).split())[:255]
    text = render(text_t, variables)
    if html_t is None:
        return subject, text, None
    html = render(html_t, variables)
    if not html.lstrip()[:9].lower().startswith(("<!doctype", "<html")):
        head, middle, tail = _layout(language, site)
        html = "".join((head, escape_html(subject), middle, html, tail))  # escaped as the body's strings
    return subject, text, html


def message_build(notification: Notification, connection=None) -> EmailMultiAlternatives:
    sender = Sender.from_settings()
    return sender.message(notification, message_render(notification), connection)


def messages_build(batch: Iterable[Notification]) -> Iterator[tuple[Notification, EmailMultiAlternatives | Exception]]:
    """Each message's e-mail, or the exception that stopped building it, for a drain's batch.

    The batch is grouped by language so that each language is activated once, not once per
    message; the e-mail is sent while its language is still active.
    """
    sender = Sender.from_settings()  # settings read once per batch: each read goes through LazySettings
    renderer = Renderer()

    def language_of(notification: Notification) -> str:
        return notification.language or sender.default_language

    for language, group in groupby(sorted(batch, key=language_of), key=language_of):
        with translation.override(language):
            gettexts = gettext_for_one_language()
            for notification in group:
                try:
                    parts = _render(notification, language, sender.site_url, renderer, gettexts)
                    message = sender.message(notification, parts)
                except Exception as exc:  # one message that cannot be rendered must not stop the batch
                    yield notification, exc
                else:
                    yield notification, message


@dataclass(frozen=True, slots=True)
class Sender:
    """What every e-mail of a batch shares."""

    from_email: str
    message_id_domain: str
    default_language: str
    site_url: str

    @classmethod
    def from_settings(cls) -> Sender:
        return cls(
            settings.DEFAULT_FROM_EMAIL, settings.NOTIFICATIONS_MESSAGE_ID_DOMAIN, settings.LANGUAGE_CODE, site_url()
        )

    def message(
        self, notification: Notification, parts: tuple[str, str, str | None], connection=None
    ) -> EmailMultiAlternatives:
        """``EmailMultiAlternatives(subject=..., body=..., from_email=..., to=[recipient],
        headers={"Message-ID": ...}, connection=...)`` plus the HTML alternative: the same object,
        its attributes set directly. The constructor's argument checks cost ~3 of a drained
        message's ~50 us of Python and can never fail here. tests/notifications/test_rendering_shortcuts.py
        compares the result with the constructor's, attribute by attribute (Django is pinned).
        """
        subject, text, html = parts
        message = _new(EmailMultiAlternatives)
        message.to = [notification.recipient]
        message.cc = []
        message.bcc = []
        message.reply_to = []
        message.from_email = self.from_email
        message.subject = subject
        message.body = text or ""
        message.attachments = []
        message.extra_headers = {"Message-ID": f"<{notification.uuid}@{self.message_id_domain}>"}
        message.connection = connection
        message.alternatives = [] if html is None else [EmailAlternative(html, "text/html")]
        return message
