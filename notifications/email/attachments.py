"""Files attached to a queued e-mail by reference, read from their storage when it is sent.

A notification stores where a file is, never its bytes (a queue row stays small, and a file
regenerated before sending goes out as it is then)::

    {"storage": "billing_statements", "name": "2025/01/statement.pdf",
     "filename": "statement-2025-01.pdf", "mimetype": "application/pdf"}

``storage`` is a key of ``settings.STORAGES`` that NOTIFICATIONS_ATTACHMENT_STORAGES allows.
A file up to NOTIFICATIONS_ATTACHMENT_MAX_BYTES is attached; a larger one becomes a signed link
(``TimestampSigner``) to ``attachment_download``, valid NOTIFICATIONS_ATTACHMENT_LINK_MAX_AGE
seconds, which the message's templates show from ``attachment_links``.
"""

from __future__ import annotations

import mimetypes
import posixpath
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import storages
from django.core.signing import BadSignature, SignatureExpired, TimestampSigner
from django.urls import reverse

SALT = "notifications.attachment"
KEYS = {"storage", "name", "filename", "mimetype"}

__all__ = ["BadSignature", "SignatureExpired", "attachment_check", "attachment_from_token", "attachments_split"]


def attachment_check(attachment: dict) -> dict:
    """The attachment reference with its defaults filled in; ValueError for a bad one."""
    if not isinstance(attachment, dict) or set(attachment) - KEYS:
        raise ValueError(f"An attachment is a dict with the keys {sorted(KEYS)}: {attachment!r}")
    alias, name = attachment.get("storage"), attachment.get("name")
    if alias not in settings.NOTIFICATIONS_ATTACHMENT_STORAGES:
        raise ValueError(f"Attachment storage {alias!r} is not in NOTIFICATIONS_ATTACHMENT_STORAGES.")
    if not isinstance(name, str) or not name or ".." in name.split("/"):
        raise ValueError(f"Bad attachment file name {name!r}.")
    filename = attachment.get("filename") or posixpath.basename(name)
    mimetype = attachment.get("mimetype") or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return {"storage": alias, "name": name, "filename": filename, "mimetype": mimetype}


def attachments_split(attachments: list[dict], *, now: datetime) -> tuple[list[dict], list[dict]]:
    """(references small enough to attach, download links for the others).

    A link is ``{"filename", "url", "expires_at"}``. A missing file raises (the send fails and
    is retried with the message's backoff).
    """
    attached, links = [], []
    for attachment in attachments:
        if storages[attachment["storage"]].size(attachment["name"]) <= settings.NOTIFICATIONS_ATTACHMENT_MAX_BYTES:
            attached.append(attachment)
            continue
        max_age = timedelta(seconds=settings.NOTIFICATIONS_ATTACHMENT_LINK_MAX_AGE)
        links.append(
            {"filename": attachment["filename"], "url": attachment_url(attachment), "expires_at": now + max_age}
        )
    return attached, links


def attachment_read(attachment: dict) -> tuple[str, bytes, str]:
    """(filename, content, mimetype), as EmailMessage.attach takes them."""
    with storages[attachment["storage"]].open(attachment["name"], "rb") as file:
        return attachment["filename"], file.read(), attachment["mimetype"]


def attachment_url(attachment: dict) -> str:
    token = TimestampSigner(salt=SALT).sign_object(attachment, compress=True)
    return settings.SITE_URL.rstrip("/") + reverse("notifications:attachment", args=[token])


def attachment_from_token(token: str) -> dict:
    """The reference a link names; SignatureExpired past its age, BadSignature if altered."""
    attachment = TimestampSigner(salt=SALT).unsign_object(token, max_age=settings.NOTIFICATIONS_ATTACHMENT_LINK_MAX_AGE)
    # Signed by us, but the allow-list may have shrunk since.
    return attachment_check(attachment)
