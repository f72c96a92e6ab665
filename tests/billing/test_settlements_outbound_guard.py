"""financial-reconciliation reaches the processor's API only through the outbound-HTTP guard:
no loopback, private or metadata address, and no redirect to another host (the API key would
follow it). The refused-destination tests run inside ``no_network``, which fails the test on
any connection to a non-loopback address, so a broken guard cannot send traffic anywhere."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management.base import CommandError

from billing.models import SettlementRecord
from tests.job_commands import run
from tests.notifications.conftest import no_network  # noqa: F401  (the socket-layer fence)

pytestmark = pytest.mark.django_db

PAGE = {"settlements": [{"reference": "ch_1", "amount": "10.00", "settled_on": "2025-02-09"}], "next_cursor": None}


class Processor:
    """A settlement API on ``host`` that answers ``PAGE`` under /v1, redirects /old/... to /v1/...
    on itself, and redirects everything to ``location`` when that is set."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.seen: list[dict] = []
        self.location = ""
        processor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                processor.seen.append({"path": self.path, "authorization": self.headers["Authorization"]})
                location = processor.location or (
                    self.path.replace("/old", "/v1", 1) if self.path.startswith("/old") else ""
                )
                if location:
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(PAGE).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def processors():
    started: list[Processor] = []

    def start(host: str = "127.0.0.1") -> Processor:
        started.append(Processor(host))
        return started[-1]

    yield start
    for processor in started:
        processor.stop()


def test_it_refuses_a_processor_on_loopback_by_default(processors, settings):
    processor = processors()
    settings.BILLING_PROCESSOR_BASE_URL = processor.url
    settings.BILLING_PROCESSOR_API_KEY = "sk_live_loopback_secret"
    with pytest.raises(CommandError, match=r"refused by the outbound-HTTP guard.*127\.0\.0\.1 is a loopback address"):
        run("financial_reconciliation", "--as-of", "2025-02-10")
    assert processor.seen == []
    assert SettlementRecord.objects.count() == 0


@pytest.mark.parametrize(
    ("base_url", "reason"),
    [
        ("http://10.0.0.5/v1", "private"),
        ("http://169.254.169.254/latest", "metadata"),
        ("http://processor.internal.test/v1", "resolves to 192.168.4.4"),
    ],
)
def test_it_refuses_private_and_metadata_addresses_without_connecting(base_url, reason, settings, no_network):  # noqa: F811
    no_network.resolve("processor.internal.test", ["192.168.4.4"])
    settings.BILLING_PROCESSOR_BASE_URL = base_url
    with pytest.raises(CommandError, match=reason):
        run("financial_reconciliation", "--as-of", "2025-02-10")
    assert no_network.connects == []


def test_it_does_not_follow_a_redirect_to_another_host(processors, settings):
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True  # both test servers listen on loopback
    processor, elsewhere = processors("127.0.0.1"), processors("127.0.0.2")
    processor.location = f"{elsewhere.url}/settlements?date=2025-02-09"
    settings.BILLING_PROCESSOR_BASE_URL = processor.url
    settings.BILLING_PROCESSOR_API_KEY = "sk_live_redirect_secret"
    with pytest.raises(CommandError, match="redirects to another origin; not followed"):
        run("financial_reconciliation", "--as-of", "2025-02-10")
    assert len(processor.seen) == 1
    assert elsewhere.seen == []
    assert SettlementRecord.objects.count() == 0


def test_it_follows_a_redirect_within_the_processors_own_origin(processors, settings):
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True
    processor = processors()
    settings.BILLING_PROCESSOR_BASE_URL = processor.url.replace("/v1", "/old")
    settings.BILLING_PROCESSOR_API_KEY = "sk_live_same_origin"
    summary = run("financial_reconciliation", "--as-of", "2025-02-10")
    assert summary["records_read"] == 1
    assert [seen["path"].split("?")[0] for seen in processor.seen] == ["/old/settlements", "/v1/settlements"]
    assert processor.seen[1]["authorization"] == "Bearer sk_live_same_origin"
