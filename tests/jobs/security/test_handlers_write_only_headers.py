"""A webhook handler's credentials stay with its own origin: a redirect to another host gets
none of its auth or extra headers. Extra-header values are write-only like the secret: stored
encrypted, masked in the admin, the audit log, the run and every page and API answer."""

from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler

import pytest

from core.crypto import secret_decrypt, secret_encrypt
from jobs.models import AuditEntry, JobRun, WebhookHandler
from jobs.running.runner import run_execute, run_trigger
from tests.jobs.conftest import Receiver

pytestmark = pytest.mark.django_db
Status = JobRun.Status
SECRET = "auth-s3cret-Kq81-never-elsewhere"
HEADER_TOKEN = "hdr-t0ken-Zp44-never-elsewhere"
# A header whose name says nothing secret, so only its write-only handling can hide its value.
PLANTED = "PLANTED-h3ader-t0ken-d0-not-leak"


def run_job(job) -> JobRun:
    run = run_trigger(job=job, triggered_by="manual", dispatch=False).run
    return run_execute(run.pk)


@pytest.fixture
def other_host():
    """A second receiver, reached by another host name (localhost rather than 127.0.0.1)."""
    server = Receiver()
    yield server
    server.close()


@pytest.mark.parametrize(
    ("auth", "fields"),
    [
        ("bearer", {}),
        ("basic", {"auth_username": "ops"}),
        ("api_key", {"auth_header_name": "X-API-Key"}),
        ("custom_header", {"auth_header_name": "X-Signature"}),
    ],
)
def test_it_sends_no_credential_to_another_host_that_a_redirect_points_at(
    receiver, other_host, make_handler, make_webhook_job, auth, fields
):
    stolen = f"http://localhost:{other_host.server.server_address[1]}/steal"
    receiver.mode, receiver.location = "redirect", stolen
    handler = make_handler(
        url=receiver.url, auth=auth, secret=SECRET, extra_headers={"X-Token": secret_encrypt(HEADER_TOKEN)}, **fields
    )
    run = run_job(make_webhook_job(handler=handler))
    assert receiver.requests[0]["headers"]["X-Token"] == HEADER_TOKEN  # the handler's own host gets them
    basic = base64.b64encode(f"ops:{SECRET}".encode()).decode()
    arrived = json.dumps([r["headers"] for r in other_host.requests])
    assert SECRET not in arrived and basic not in arrived and HEADER_TOKEN not in arrived
    assert run.status == Status.FAILED
    assert f"redirects to {stolen}, another origin; not followed" in run.error
    assert SECRET not in run.output + run.error and HEADER_TOKEN not in run.output + run.error


class RedirectsOnceWithinItsHost(BaseHTTPRequestHandler):
    """/hook answers 302 to /final on the same host; /final records the request and answers 200."""

    seen: list[dict] = []

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/hook"):
            self.send_response(302)
            self.send_header("Location", "/final")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args) -> None:
        pass


def test_it_follows_a_redirect_within_the_handlers_own_host_with_its_credentials(
    receiver, make_handler, make_webhook_job
):
    RedirectsOnceWithinItsHost.seen = []
    receiver.server.RequestHandlerClass = RedirectsOnceWithinItsHost
    handler = make_handler(
        url=receiver.url,
        auth="api_key",
        auth_header_name="X-API-Key",
        secret=SECRET,
        extra_headers={"X-Token": secret_encrypt(HEADER_TOKEN)},
    )
    run = run_job(make_webhook_job(handler=handler))
    assert run.status == Status.SUCCEEDED, run.error
    [final] = RedirectsOnceWithinItsHost.seen
    assert final["X-API-Key"] == SECRET and final["X-Token"] == HEADER_TOKEN


def handler_post(receiver, **changes) -> dict:
    data = {
        "name": "leaky-headers",
        "url": receiver.url,
        "method": "POST",
        "auth": "bearer",
        "auth_username": "",
        "auth_header_name": "",
        "extra_headers": json.dumps({"X-Partner-Key": PLANTED, "Content-Type": "application/json"}),
        "timeout_seconds": 5,
        "new_secret": "bearer-secret-for-this-test",
    }
    data.update(changes)
    return data


def test_it_keeps_extra_header_values_out_of_every_page_record_and_answer(staff_client, api, receiver, make_job):
    receiver.mode = "fail"  # a 500 whose body echoes every request header back
    assert staff_client.post("/admin/jobs/webhookhandler/add/", handler_post(receiver)).status_code == 302
    handler = WebhookHandler.objects.get()
    assert PLANTED not in json.dumps(handler.extra_headers)  # stored encrypted
    job = make_job("call-leaky-headers", command="", webhook_handler=handler)
    run = run_execute(api.post("/api/jobs/run", {"job": job.name}).json()["run_id"])
    assert receiver.requests[0]["headers"]["X-Partner-Key"] == PLANTED  # it really was sent
    assert run.status == Status.FAILED and "X-Partner-Key: [redacted]" in run.output
    assert "Content-Type: application/json" in run.output  # harmless values stay readable

    change = f"/admin/jobs/webhookhandler/{handler.pk}/change/"
    change_page = staff_client.get(change).content.decode()
    assert "&quot;X-Partner-Key&quot;: &quot;[redacted]&quot;" in change_page  # names shown, values masked
    assert not any(token in change_page for token in handler.extra_headers.values())
    seen = [change_page]
    for url in (
        "/admin/jobs/webhookhandler/",
        f"/admin/jobs/webhookhandler/{handler.pk}/history/",
        "/admin/jobs/auditentry/",
        f"/admin/jobs/jobrun/{run.pk}/change/",
        f"/dashboard/runs/{run.pk}/",
        f"/dashboard/jobs/{job.name}/",
        "/dashboard/",
    ):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        seen.append(response.content.decode())
    seen.append(api.get(f"/api/runs/{run.pk}").content.decode())
    run.refresh_from_db()
    seen += [run.output, run.error, json.dumps(run.summary)]
    seen += [json.dumps(entry.changes) for entry in AuditEntry.objects.all()]
    assert [text[:200] for text in seen if PLANTED in text] == []
    entry = AuditEntry.objects.get(object_type="webhookhandler", action="create")
    assert entry.changes["extra_headers"][1] == {"X-Partner-Key": "[redacted]", "Content-Type": "[redacted]"}


def test_it_keeps_a_stored_header_value_unless_a_new_one_is_typed(staff_client, receiver):
    assert staff_client.post("/admin/jobs/webhookhandler/add/", handler_post(receiver)).status_code == 302
    handler = WebhookHandler.objects.get()
    change = f"/admin/jobs/webhookhandler/{handler.pk}/change/"
    # The form as shown (values masked), saved with another field changed: the values stay.
    shown = {"X-Partner-Key": "[redacted]", "Content-Type": "[redacted]"}
    resaved = handler_post(receiver, timeout_seconds=9, new_secret="", extra_headers=json.dumps(shown))
    assert staff_client.post(change, resaved).status_code == 302
    handler.refresh_from_db()
    stored = {name: secret_decrypt(value) for name, value in handler.extra_headers.items()}
    assert stored == {"X-Partner-Key": PLANTED, "Content-Type": "application/json"} and handler.timeout_seconds == 9
    # A typed value replaces one header; a header left out is deleted.
    typed = handler_post(receiver, new_secret="", extra_headers=json.dumps({"X-Partner-Key": "rotated-value-123"}))
    assert staff_client.post(change, typed).status_code == 302
    handler.refresh_from_db()
    assert {name: secret_decrypt(value) for name, value in handler.extra_headers.items()} == {
        "X-Partner-Key": "rotated-value-123"
    }
    # A masked value for a header that has no stored value is refused.
    unknown = handler_post(receiver, new_secret="", extra_headers=json.dumps({"X-New": "[redacted]"}))
    response = staff_client.post(change, unknown)
    assert response.status_code == 200 and "has no stored value to keep" in response.content.decode()
