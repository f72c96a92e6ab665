"""check-provider-credits against API providers served on 127.0.0.1 by this module."""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jobs.models import Job, JobRun
from jobs.running.runner import run_execute, run_trigger
from tests.job_commands import at, drain, run

pytestmark = pytest.mark.django_db
NOW = at("2025-03-01", 9)
KEY = "prov-test-key-0001"


class Providers:
    """One server, a provider per path: ``answers[path] = (status, body)``; the Authorization
    header of every request is recorded."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, dict]] = {}
        self.seen: list[tuple[str, str]] = []
        providers = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                providers.seen.append((self.path, self.headers.get("Authorization", "")))
                status, body = providers.answers.get(self.path, (404, {"error": "no such path"}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def providers(settings, outbox):
    server = Providers()
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.ACCOUNTS_CREDIT_PROVIDER_TIMEOUT_SECONDS = 2.0
    yield server
    server.stop()


def provider(settings, server: Providers, name: str, path: str, **extra) -> None:
    entry = {"name": name, "url": server.url + path, "key": KEY, **extra}
    settings.ACCOUNTS_CREDIT_PROVIDERS = [*settings.ACCOUNTS_CREDIT_PROVIDERS, entry]


@pytest.fixture(autouse=True)
def _no_providers(settings):
    settings.ACCOUNTS_CREDIT_PROVIDERS = []


@pytest.mark.parametrize("status", [401, 402, 429])
def test_it_e_mails_the_administrators_when_a_provider_refuses_the_key(providers, settings, outbox, status):
    providers.answers["/v1/credits"] = (status, {"error": "no"})
    provider(settings, providers, "translator", "/v1/credits")

    summary = run("check_provider_credits", "--as-of", NOW.isoformat())

    assert summary == {"providers": 1, "healthy": 0, "refused": 1, "low_balance": 0, "unchecked": 0,
                       "admin_messages_queued": 1}  # fmt: skip
    assert providers.seen == [("/v1/credits", f"Bearer {KEY}")]
    drain()
    [message] = outbox
    assert message.to == ["ops@example.com"]
    assert message.subject.startswith("[Cronhouse] API provider translator ")
    assert f"HTTP {status}" in message.subject
    assert KEY not in message.body and KEY not in message.subject

    # The same finding later that day (a retry) is not e-mailed twice.
    assert run("check_provider_credits", "--as-of", (NOW + timedelta(hours=2)).isoformat())["refused"] == 1
    drain()
    assert len(outbox) == 1


def test_it_e_mails_the_administrators_when_a_balance_is_below_its_threshold(providers, settings, outbox):
    providers.answers["/credits"] = (200, {"data": {"total_credits": 3.5}})
    provider(settings, providers, "speech", "/credits", low_balance="10", balance_field="data.total_credits")

    summary = run("check_provider_credits", "--as-of", NOW.isoformat())

    assert (summary["low_balance"], summary["admin_messages_queued"]) == (1, 1)
    drain()
    [message] = outbox
    assert message.subject == "[Cronhouse] API provider speech is low on credit: balance 3.5, below 10"


def test_it_sends_nothing_for_healthy_providers(providers, settings, outbox):
    providers.answers["/balance"] = (200, {"balance": "250.00"})
    providers.answers["/status"] = (200, {"ok": True})
    provider(settings, providers, "maps", "/balance", low_balance="100")
    provider(settings, providers, "search", "/status")

    summary = run("check_provider_credits", "--as-of", NOW.isoformat())

    assert summary == {"providers": 2, "healthy": 2, "refused": 0, "low_balance": 0, "unchecked": 0,
                       "admin_messages_queued": 0}  # fmt: skip
    drain()
    assert outbox == []


def test_it_says_so_when_a_provider_cannot_be_checked(providers, settings, outbox):
    with socket.socket() as unused:  # a loopback port nobody listens on
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    settings.ACCOUNTS_CREDIT_PROVIDERS = [
        {"name": "gone", "url": f"http://127.0.0.1:{closed_port}/credits", "key": KEY},
        {"name": "odd", "url": providers.url + "/credits", "key": KEY, "low_balance": "5"},
    ]
    providers.answers["/credits"] = (200, {"credits": 12})  # no "balance" field

    summary = run("check_provider_credits", "--as-of", NOW.isoformat())

    assert (summary["unchecked"], summary["healthy"]) == (2, 0)
    assert [w.split(":")[0] for w in summary["warnings"]] == ["provider gone not checked", "provider odd not checked"]
    assert "no answer (ConnectionError" in summary["warnings"][0]
    assert "no number at 'balance'" in summary["warnings"][1]
    assert not any(KEY in warning for warning in summary["warnings"])
    drain()
    assert outbox == []

    # Run as the platform runs it: succeeded with warnings, not a plain success.
    job = Job.objects.create(
        name="check-provider-credits", command="check_provider_credits", cron_expression="0 9 * * *"
    )
    job_run = run_execute(run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run.pk)
    assert job_run.status == JobRun.Status.SUCCEEDED
    assert job_run.warnings == summary["warnings"]


def test_it_refuses_a_provider_address_the_outbound_guard_forbids(providers, settings):
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = False
    provider(settings, providers, "internal", "/credits")

    summary = run("check_provider_credits", "--as-of", NOW.isoformat())

    assert summary["unchecked"] == 1 and "refused by the outbound-HTTP guard" in summary["warnings"][0]
    assert providers.seen == []
