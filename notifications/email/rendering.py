"""Turning a queued notification into an e-mail.

A template name such as ``billing/rent_reminder`` is a folder under ``templates/emails/``
holding three Jinja2 files (healthchecks' layout), rendered by the ``emails`` engine
(``notifications/email/jinja.py`` describes it) with ``render_to_string(..., using="emails")``:

    templates/emails/billing/rent_reminder/subject.txt   one line (whitespace and newlines are folded)
    templates/emails/billing/rent_reminder/body.txt      the plain-text body (required)
    templates/emails/billing/rent_reminder/body.html     the HTML alternative (optional)

Each renders with the message's context plus ``site_url``, ``recipient`` and
``notification_id``, inside ``translation.override(language)``: ``{{ _("...") }}`` and
``{% trans %}`` strings come out in the recipient's language where a translation exists, in
English otherwise. ``.txt`` parts render without autoescaping, ``.html`` with it.

Files named in ``notification.attachments`` are read from their storage here, when the message
is built; one too large to attach is a link in ``attachment_links`` (``attachments.py``).

``body.html`` is the message's content only: the HTML part is ``emails/layout.html``, which
includes it (``{% include body_template %}``) and shows the subject as its title.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import TemplateDoesNotExist, engines
from django.template.loader import render_to_string
from django.utils import timezone, translation

from notifications.email.attachments import attachment_read, attachments_split
from notifications.email.jinja import localize_floats
from notifications.models import Notification

ENGINE = "emails"
LAYOUT = "emails/layout.html"
TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*(/[a-z0-9][a-z0-9_\-]*)*$")


class UnknownTemplate(ValueError):
    """The template name is malformed or its subject/body files do not exist."""


def template_path(name: str, part: str) -> str:
    return f"emails/{name}/{part}"


def template_check(name: str) -> None:
    """Raise UnknownTemplate unless ``name`` is a valid folder with a subject and a text body."""
    if not TEMPLATE_NAME.match(name or ""):
        raise UnknownTemplate(f"Bad template name {name!r}: expected a path like 'billing/rent_reminder'.")
    for part in ("subject.txt", "body.txt"):
        try:
            engines[ENGINE].get_template(template_path(name, part))
        except TemplateDoesNotExist:
            raise UnknownTemplate(
                f"Template {name!r} is missing {part}: give templates/emails/{name}/subject.txt and body.txt."
            ) from None


def _has_html(name: str) -> bool:
    try:
        engines[ENGINE].get_template(template_path(name, "body.html"))
    except TemplateDoesNotExist:
        return False
    return True


def message_language(notification: Notification) -> str:
    return notification.language or settings.LANGUAGE_CODE


def message_render(notification: Notification, *, links: list[dict] | None = None) -> tuple[str, str, str | None]:
    """(subject, text body, html body or None) for one notification, in its language.

    ``links``: download links of attachments too large to attach (``attachment_links`` in the
    templates); None works them out here (the admin's preview). A raw e-mail (``send_email``)
    was made safe when it was queued: its parts go out as stored.
    """
    if notification.kind == Notification.Kind.RAW:
        return notification.subject, notification.text, notification.html or None
    name, language = notification.template, message_language(notification)
    if links is None:
        links = attachments_split(notification.attachments or [], now=timezone.now())[1]
    context = {
        **localize_floats(notification.context or {}),
        "site_url": settings.SITE_URL.rstrip("/"),
        "recipient": notification.recipient,
        "notification_id": str(notification.uuid),
        "attachment_links": links,
        "LANGUAGE_CODE": language,
    }
    with translation.override(language):
        subject = render_to_string(template_path(name, "subject.txt"), context, using=ENGINE)
        subject = " ".join(subject.split())[:255]
        text = render_to_string(template_path(name, "body.txt"), context, using=ENGINE)
        if not _has_html(name):
            return subject, text, None
        layout_context = {**context, "subject": subject, "body_template": template_path(name, "body.html")}
        return subject, text, render_to_string(LAYOUT, layout_context, using=ENGINE)


def message_build(notification: Notification) -> EmailMultiAlternatives:
    """The e-mail for one notification; its Message-ID is stable, so a receiver can spot a resend.
    Attached files are read now, from their storage."""
    attached, links = attachments_split(notification.attachments or [], now=timezone.now())
    subject, text, html = message_render(notification, links=links)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        to=[notification.recipient],
        headers={"Message-ID": f"<{notification.uuid}@{settings.NOTIFICATIONS_MESSAGE_ID_DOMAIN}>"},
    )
    if html is not None:
        message.attach_alternative(html, "text/html")
    for attachment in attached:
        message.attach(*attachment_read(attachment))
    return message
