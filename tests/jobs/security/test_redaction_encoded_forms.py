"""A receiver that echoes a webhook handler's secrets encoded (base64, URL-safe base64, URL
encoding, hex) gets none of them shown: not in the run's output or error on the admin's run page,
the dashboard's run page, GET /api/runs/<id>, nor in the failure alert."""

from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote, quote_plus

import pytest

from core.crypto import secret_encrypt
from core.redaction import redact
from jobs.models import JobRun
from jobs.running.runner import run_execute, run_trigger
from notifications.models import Notification

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("alert_recipients")]

# Characters that URL encoding changes, so that each encoded form differs from the secret.
BEARER = "bt/9+Zq=R&k?m#x%y_S3CRET-bearer"
API_KEY_VALUE = "ak/7+Wp=Q&j?n#v%z_S3CRET-apikey"
PARTNER_KEY = "pk/5+Vo=P&h?l#u%w_S3CRET-partner"


def encoded(value: str) -> dict[str, str]:
    raw = value.encode()
    return {
        "base64": base64.b64encode(raw).decode(),
        "base64, no padding": base64.b64encode(raw).decode().rstrip("="),
        "url-safe base64": base64.urlsafe_b64encode(raw).decode(),
        "url-safe base64, no padding": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "quote": quote(value, safe=""),
        "quote_plus": quote_plus(value),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "base64 of the header line": base64.b64encode(f"Authorization: Bearer {value}".encode()).decode(),
    }


class EchoingEncoded(BaseHTTPRequestHandler):
    """Answers 500: the reason phrase and the first body line carry the base64 of the secret it
    was sent; the body then lists every encoded form of every secret it was sent."""

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        sent = [
            self.headers.get("Authorization", "").removeprefix("Bearer ").strip(),
            self.headers.get("X-API-Key", ""),
            self.headers.get("X-Partner-Key", ""),
        ]
        forms = [form for value in sent if value for form in encoded(value).values()]
        body = "\n".join(forms).encode()
        self.send_response(500, f"Failed for {forms[0]}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(
    ("auth", "secret"),
    [("bearer", BEARER), ("api_key", API_KEY_VALUE)],
)
def test_it_shows_no_encoded_form_of_a_secret_the_receiver_echoes(
    auth, secret, receiver, make_handler, make_webhook_job, staff_client, api, django_capture_on_commit_callbacks
):
    receiver.server.RequestHandlerClass = EchoingEncoded
    handler = make_handler(
        url=receiver.url,
        auth=auth,
        secret=secret,
        auth_header_name="X-API-Key",
        extra_headers={"X-Partner-Key": secret_encrypt(PARTNER_KEY)},
    )
    job = make_webhook_job(handler=handler)
    with django_capture_on_commit_callbacks(execute=True):
        run = run_trigger(job=job, triggered_by="manual", dispatch=False).run
        run = run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == JobRun.Status.FAILED and run.summary["http_status"] == 500
    assert "-> HTTP 500 Failed for [redacted]" in run.output

    shown = {
        "admin": staff_client.get(f"/admin/jobs/jobrun/{run.pk}/change/").content.decode(),
        "dashboard": staff_client.get(f"/dashboard/runs/{run.pk}/").content.decode(),
        "dashboard json": staff_client.get(
            f"/dashboard/runs/{run.pk}/", HTTP_ACCEPT="application/json"
        ).content.decode(),
        "api": api.get(f"/api/runs/{run.pk}").content.decode(),
        "alert": json.dumps([n.context for n in Notification.objects.all()]),
    }
    assert all(text for text in shown.values()) and Notification.objects.exists()
    assert "[redacted]" in shown["admin"] and "[redacted]" in shown["api"]
    leaks = [
        (where, value, name)
        for value in (secret, PARTNER_KEY)
        for name, form in encoded(value).items()
        for where, text in shown.items()
        if form in text
    ]
    assert leaks == []


def test_it_masks_the_basic_auth_token_of_a_stored_handler(make_handler):
    make_handler(auth="basic", auth_username="ops", secret="basic-pass-4711")
    token = base64.b64encode(b"ops:basic-pass-4711").decode()
    assert redact(f"Authorization: Basic {token}; again: {token}", stored=True) == (
        "Authorization: Basic [redacted]; again: [redacted]"
    )


def test_it_leaves_ordinary_text_alone():
    text = "charged 42 leases; 0x1f errors; see https://example.com/a%20b?c=d"
    assert redact(text, extra=["not-in-this-text-123"]) == text
