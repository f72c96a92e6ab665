"""Webhook-handler jobs: success, 500 and timeout against a receiver on loopback; every
forbidden address refused with the socket layer patched, so a broken guard fails the test
instead of sending traffic to a private or metadata address."""

from __future__ import annotations

import base64
import json
import socket
from http.server import BaseHTTPRequestHandler

import pytest

from core.crypto import secret_encrypt
from jobs.models import JobRun, WebhookHandler
from jobs.running.runner import run_execute, run_trigger
from jobs.running.webhooks import EXCERPT_CHARS

pytestmark = pytest.mark.django_db
Status = JobRun.Status


def run_job(job, **kwargs) -> JobRun:
    run = run_trigger(job=job, triggered_by="manual", dispatch=False, **kwargs).run
    return run_execute(run.pk)


def test_it_posts_the_run_to_the_handler_with_its_auth_and_succeeds_on_2xx(receiver, make_handler, make_webhook_job):
    handler = make_handler(
        url=receiver.url, auth="bearer", secret="tok-123", extra_headers={"X-Env": secret_encrypt("test")}
    )
    job = make_webhook_job(handler=handler, config={"region": "eu"})
    run = run_job(job)
    assert run.status == Status.SUCCEEDED, run.error
    assert run.summary["http_status"] == 200 and run.summary["elapsed_ms"] >= 0
    sent = receiver.requests[0]
    assert sent["method"] == "POST" and sent["headers"]["Authorization"] == "Bearer tok-123"
    assert sent["headers"]["X-Env"] == "test"
    assert json.loads(sent["body"]) == {
        "job": job.name,
        "run_id": run.pk,
        "scheduled_for": None,
        "triggered_by": "manual",
        "config": {"region": "eu"},
    }
    assert "Authorization: Bearer [redacted]" in run.output and "tok-123" not in run.output
    assert "X-Env: [redacted]" in run.output and f"X-Cronhouse-Run: {run.pk}" in run.output
    job.refresh_from_db()
    assert job.last_run_status == Status.SUCCEEDED


@pytest.mark.parametrize(
    ("auth", "fields", "header", "expected"),
    [
        ("basic", {"auth_username": "ops"}, "Authorization", "Basic " + base64.b64encode(b"ops:pw-9").decode()),
        ("api_key", {"auth_header_name": "X-API-Key"}, "X-API-Key", "pw-9"),
        ("custom_header", {"auth_header_name": "X-Token"}, "X-Token", "pw-9"),
    ],
)
def test_it_sends_each_kind_of_auth(receiver, make_handler, make_webhook_job, auth, fields, header, expected):
    handler = make_handler(url=receiver.url, auth=auth, secret="pw-9", **fields)
    run = run_job(make_webhook_job(handler=handler))
    assert run.status == Status.SUCCEEDED
    assert receiver.requests[0]["headers"][header] == expected
    assert "pw-9" not in run.output


def test_it_sends_get_fields_as_query_parameters(receiver, make_handler, make_webhook_job):
    handler = make_handler(url=receiver.url, method="GET")
    run = run_job(make_webhook_job(handler=handler))
    assert run.status == Status.SUCCEEDED
    assert f"run_id={run.pk}" in receiver.requests[0]["path"]


def test_it_fails_on_a_500_with_the_status_and_a_redacted_excerpt(receiver, make_handler, make_webhook_job):
    receiver.mode = "fail"
    handler = make_handler(url=receiver.url, auth="bearer", secret="echo-me-not")
    run = run_job(make_webhook_job(handler=handler))
    assert run.status == Status.FAILED
    assert run.error.startswith(f"HTTP 500 from POST {receiver.url}: upstream exploded")
    assert run.summary["http_status"] == 500
    assert "echo-me-not" not in run.error + run.output
    assert "Bearer [redacted]" in run.error  # the receiver echoed the header; we show it redacted


SECRET = "s3cret-Z9q-4711-do-not-echo"


class EchoingSecret(BaseHTTPRequestHandler):
    """Answers 401 with the secret in its reason phrase and across the body's excerpt cut."""

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = ("x" * (EXCERPT_CHARS - len(SECRET) // 2) + SECRET + " and again " + SECRET).encode()
        self.send_response(401, f"Unauthorized {SECRET}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("auth", ["bearer", "api_key"])
def test_it_keeps_every_piece_of_an_echoed_secret_out_of_the_run(receiver, make_handler, make_webhook_job, auth):
    receiver.server.RequestHandlerClass = EchoingSecret
    handler = make_handler(url=receiver.url, auth=auth, secret=SECRET, auth_header_name="X-API-Key")
    run = run_job(make_webhook_job(handler=handler))
    run.refresh_from_db()
    assert run.status == Status.FAILED and run.summary["http_status"] == 401
    assert "-> HTTP 401 Unauthorized [redacted]" in run.output
    recorded = run.output + run.error
    pieces = {SECRET[i : i + 8] for i in range(len(SECRET) - 7)}
    assert [piece for piece in pieces if piece in recorded] == []


def test_it_times_out_a_slow_receiver(receiver, make_handler, make_webhook_job):
    receiver.mode, receiver.delay = "slow", 3
    handler = make_handler(url=receiver.url, timeout_seconds=1)
    run = run_job(make_webhook_job(handler=handler))
    assert run.status == Status.TIMED_OUT
    assert run.error == f"Timed out after 1 s waiting for POST {receiver.url}."


def test_it_retries_a_failed_call_when_the_job_allows(receiver, make_handler, make_webhook_job):
    receiver.mode = "fail"
    run = run_job(
        make_webhook_job(handler=make_handler(url=receiver.url), max_retries=1),
    )
    assert run.status == Status.FAILED
    assert JobRun.objects.filter(retry_of=run, status=Status.QUEUED).exists()


@pytest.fixture
def no_outbound_connections(monkeypatch):
    """Any connect() to anything but the test receiver fails the test (and sends nothing)."""
    attempts = []
    real_connect = socket.socket.connect
    allowed = set()

    def guarded_connect(self, address):
        if tuple(address[:2]) in allowed:
            return real_connect(self, address)
        attempts.append(address)
        raise AssertionError(f"the guard let a connection through to {address}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: guarded_connect(None, address))
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host, port, *args, **kwargs):
        # Names that a hostile DNS answers with internal addresses.
        fake = {"rebind.example": "10.1.2.3", "sneaky.example": "169.254.169.254", "v6.example": "fd00::1"}
        if host in fake:
            family = socket.AF_INET6 if ":" in fake[host] else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (fake[host], port or 80))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    return attempts, allowed


FORBIDDEN = [
    "http://127.0.0.1:9/hook",
    "http://localhost:9/hook",
    "http://[::1]:9/hook",
    "http://10.0.0.5/hook",
    "http://172.16.4.4/hook",
    "http://192.168.1.10/hook",
    "http://100.64.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://224.0.0.1/hook",
    "http://0.0.0.0/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://rebind.example/hook",
    "http://sneaky.example/hook",
    "http://v6.example/hook",
    "ftp://files.example.com/hook",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("url", FORBIDDEN)
def test_it_refuses_every_forbidden_destination_without_connecting(
    url, make_handler, make_webhook_job, no_outbound_connections, settings
):
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = False
    attempts, _ = no_outbound_connections
    # Stored directly: the admin form would already refuse these URLs on save.
    handler = WebhookHandler.objects.create(name="bad", url=url)
    run = run_job(make_webhook_job(handler=handler))
    assert attempts == []
    assert run.status == Status.FAILED
    assert run.error.startswith("Refused by the outbound-HTTP guard"), run.error


def test_it_refuses_a_redirect_to_a_metadata_address(receiver, make_handler, make_webhook_job, no_outbound_connections):
    attempts, allowed = no_outbound_connections
    allowed.add(("127.0.0.1", receiver.server.server_address[1]))
    receiver.mode, receiver.location = "redirect", "http://169.254.169.254/latest/meta-data/"
    run = run_job(make_webhook_job(handler=make_handler(url=receiver.url)))
    assert len(receiver.requests) == 1 and attempts == []
    assert run.status == Status.FAILED and "Refused" in run.error


def test_it_fails_clearly_when_the_secret_cannot_be_decrypted(make_handler, make_webhook_job, settings):
    handler = make_handler(auth="bearer", secret="old-secret")
    from cryptography.fernet import Fernet

    settings.JOBS_SECRETS_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    run = run_job(make_webhook_job(handler=handler))
    assert run.status == Status.FAILED
    assert "cannot be decrypted" in run.error and handler.secret not in run.error
