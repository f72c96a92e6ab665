"""Turning a queued notification into an e-mail.

A template name such as ``billing/rent_reminder`` is a folder under ``templates/emails/``
holding three files (healthchecks' layout):

    templates/emails/billing/rent_reminder/subject.txt   one line (whitespace and newlines are folded)
    templates/emails/billing/rent_reminder/body.txt      the plain-text body (required)
    templates/emails/billing/rent_reminder/body.html     the HTML alternative (optional)

Each renders with the message's context plus ``site_url``, ``recipient`` and
``notification_id``, inside ``translation.override(language)``: ``{% translate %}`` strings
come out in the recipient's language where a translation exists, in English otherwise.

* The ``.txt`` parts render with autoescaping OFF (plain text must not say ``&amp;``); the
  ``.html`` part with autoescaping on.
* ``body.html`` is the message's content only; it is wrapped in ``emails/layout.html`` (which
  gets the subject as ``title`` and the content as ``content``). The layout is rendered once
  per language and cached, so wrapping costs a string join instead of a template inheritance
  walk per message (measured: ``{% extends %}`` more than doubled the HTML render time). A
  ``body.html`` that starts with ``<!DOCTYPE`` or ``<html`` is sent as it is.
* ``{% load notification_urls %}{% absolute_url "admin:jobs_jobrun_change" run_id %}`` builds a
  link from ``SITE_URL``; ``{% site_link "/path/" %}`` joins a path to it.
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from functools import lru_cache

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template import Context, TemplateDoesNotExist
from django.template.loader import get_template
from django.utils import translation
from django.utils.html import escape

from .models import Notification

TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*(/[a-z0-9][a-z0-9_\-]*)*$")


class UnknownTemplate(ValueError):
    """The template name is malformed or its subject/body files do not exist."""


def template_path(name: str, part: str) -> str:
    return f"emails/{name}/{part}"


@lru_cache(maxsize=512)
def _templates(name: str):
    """(subject, text, html-or-None): the engine-level compiled templates of one message type."""
    subject = get_template(template_path(name, "subject.txt")).template
    text = get_template(template_path(name, "body.txt")).template
    try:
        html = get_template(template_path(name, "body.html")).template
    except TemplateDoesNotExist:
        html = None
    return subject, text, html


TITLE_MARK = "@@cronhouse-layout-title@@"
CONTENT_MARK = "@@cronhouse-layout-content@@"


@lru_cache(maxsize=64)
def _layout(language: str, site: str) -> tuple[str, str, str]:
    """emails/layout.html rendered once per language, split around the title and the content."""
    context = {"title": TITLE_MARK, "content": CONTENT_MARK, "site_url": site, "LANGUAGE_CODE": language}
    with translation.override(language):
        page = get_template("emails/layout.html").render(context)
    head, rest = page.split(TITLE_MARK, 1)
    middle, tail = rest.split(CONTENT_MARK, 1)
    return head, middle, tail


def template_check(name: str) -> None:
    """Raise UnknownTemplate unless ``name`` is a valid folder with a subject and a text body."""
    if not TEMPLATE_NAME.match(name or ""):
        raise UnknownTemplate(f"Bad template name {name!r}: expected a path like 'billing/rent_reminder'.")
    try:
        _templates(name)
    except TemplateDoesNotExist as exc:
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


def message_render(notification: Notification) -> tuple[str, str, str | None]:
    """(subject, text body, html body or None) for one notification."""
    subject_t, text_t, html_t = _templates(notification.template)
    site = site_url()
    context = Context(
        {
            **(notification.context or {}),
            "site_url": site,
            "recipient": notification.recipient,
            "notification_id": str(notification.uuid),
        },
        autoescape=False,
    )
    language = notification.language or settings.LANGUAGE_CODE
    # Most messages are in the active language; switching costs more than checking.
    switch = translation.override(language) if translation.get_language() != language else nullcontext()
    with switch:
        subject = " ".join(subject_t.render(context).split())[:255]
        text = text_t.render(context)
        if html_t is None:
            return subject, text, None
        context.autoescape = True
        html = html_t.render(context)
    if not html.lstrip()[:9].lower().startswith(("<!doctype", "<html")):
        head, middle, tail = _layout(language, site)
        html = "".join((head, escape(subject), middle, html, tail))
    return subject, text, html


def message_build(notification: Notification, connection=None) -> EmailMultiAlternatives:
    subject, text, html = message_render(notification)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient],
        headers={"Message-ID": f"<{notification.uuid}@{settings.NOTIFICATIONS_MESSAGE_ID_DOMAIN}>"},
        connection=connection,
    )
    if html is not None:
        message.attach_alternative(html, "text/html")
    return message
