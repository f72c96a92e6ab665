"""Public downloads of e-mail attachments too large to attach (signed, expiring links)."""

from __future__ import annotations

from django.core.files.storage import storages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from notifications.email.attachments import BadSignature, SignatureExpired, attachment_from_token


@require_GET
def attachment_download(request: HttpRequest, token: str) -> HttpResponse:
    """The file a signed link names. No login: the recipient of the e-mail is not a user, and
    the signature (with the link's age) is the permission."""
    try:
        attachment = attachment_from_token(token)
    except SignatureExpired:
        return HttpResponse(
            "This download link has expired. Ask for the e-mail to be sent again.",
            status=410,
            content_type="text/plain",
        )
    except (BadSignature, ValueError):
        raise Http404("No such file.") from None
    try:
        file = storages[attachment["storage"]].open(attachment["name"], "rb")
    except FileNotFoundError:
        raise Http404("No such file.") from None
    response = FileResponse(
        file, as_attachment=True, filename=attachment["filename"], content_type=attachment["mimetype"]
    )
    response["Cache-Control"] = "private, no-store"
    return response
