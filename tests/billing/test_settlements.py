from __future__ import annotations

import json
import threading
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management.base import CommandError

from billing.models import Payment, SettlementMatch, SettlementRecord
from billing.services.payments import payment_record
from tests.job_commands import run

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def payments(build):
    lease = build.lease(rent="1000.00")
    run("generate_charges", "--as-of", "2025-02-01")

    def pay(reference: str | None, amount: str, day: int) -> Payment:
        return payment_record(
            lease=lease, amount=D(amount), received_on=date(2025, 2, day), processor_reference=reference
        )

    return {
        "ok": pay("ch_ok", "100.00", 3),
        "short": pay("ch_short", "200.00", 3),
        "lost": pay("ch_lost", "50.00", 1),  # nothing settled, 9 days later
        "recent": pay("ch_recent", "25.00", 9),  # nothing settled yet, within the grace days
        "cash": pay(None, "10.00", 1),  # a check: never at the processor
    }


def outcomes() -> dict:
    return {
        (m.settlement.processor_reference if m.settlement else m.payment.processor_reference): m.outcome
        for m in SettlementMatch.objects.select_related("settlement", "payment")
    }


def test_it_imports_a_csv_and_records_every_outcome(payments, tmp_path):
    csv = tmp_path / "settlements.csv"
    csv.write_text(
        "reference,amount,settled_on\nch_ok,100.00,2025-02-09\nch_short,199.50,2025-02-09\nch_ghost,75.00,2025-02-09\n"
    )
    summary = run("financial_reconciliation", "--as-of", "2025-02-10T11:00:00", "--file", str(csv))
    assert summary["records_read"] == 3
    assert {k: summary[k] for k in ("matched", "amount_mismatch", "unknown_locally", "missing_at_processor")} == {
        "matched": 1,
        "amount_mismatch": 1,
        "unknown_locally": 1,
        "missing_at_processor": 1,
    }
    assert outcomes() == {
        "ch_ok": "matched",
        "ch_short": "amount_mismatch",
        "ch_ghost": "unknown_locally",
        "ch_lost": "missing_at_processor",
    }
    mismatch = SettlementMatch.objects.get(outcome="amount_mismatch")
    assert (mismatch.local_amount, mismatch.processor_amount, mismatch.difference) == (
        D("200.00"),
        D("199.50"),
        D("-0.50"),
    )

    again = run("financial_reconciliation", "--as-of", "2025-02-10T12:00:00", "--file", str(csv))
    assert again["matched"] == again["missing_at_processor"] == 0
    assert SettlementRecord.objects.count() == 3 and SettlementMatch.objects.count() == 4


def test_it_fetches_the_day_from_the_processor_api_page_by_page(payments, settings):
    pages = {
        None: {
            "settlements": [{"reference": "ch_ok", "amount": "100.00", "settled_on": "2025-02-09"}],
            "next_cursor": "p2",
        },
        "p2": {
            "settlements": [{"reference": "ch_short", "amount": "200.00", "settled_on": "2025-02-09"}],
            "next_cursor": None,
        },
    }
    seen = []

    class Processor(BaseHTTPRequestHandler):
        def do_GET(self):
            query = parse_qs(urlparse(self.path).query)
            seen.append((urlparse(self.path).path, query, self.headers["Authorization"]))
            body = json.dumps(pages[query.get("cursor", [None])[0]]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Processor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.BILLING_PROCESSOR_BASE_URL = f"http://127.0.0.1:{server.server_port}/v1"
    settings.BILLING_PROCESSOR_API_KEY = "sk_test"
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True  # the test's processor listens on loopback
    try:
        summary = run("financial_reconciliation", "--as-of", "2025-02-10T11:00:00")
    finally:
        server.shutdown()
    assert summary["day"] == "2025-02-09" and summary["source"] == "api"
    assert (summary["records_read"], summary["matched"]) == (2, 2)
    assert seen[0] == ("/v1/settlements", {"date": ["2025-02-09"]}, "Bearer sk_test")
    assert seen[1][1] == {"date": ["2025-02-09"], "cursor": ["p2"]}


def test_it_fails_clearly_when_the_processor_is_down(payments, settings):
    settings.BILLING_PROCESSOR_BASE_URL = "http://127.0.0.1:9/v1"  # discard port: connection refused
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True
    with pytest.raises(CommandError, match="Settlement API"):
        run("financial_reconciliation", "--as-of", "2025-02-10")
    assert SettlementMatch.objects.count() == 0


def test_it_writes_nothing_on_a_dry_run(payments, tmp_path):
    csv = tmp_path / "s.csv"
    csv.write_text("reference,amount,settled_on\nch_ok,100.00,2025-02-09\n")
    summary = run("financial_reconciliation", "--as-of", "2025-02-10", "--file", str(csv), "--dry-run")
    assert (summary["records_read"], summary["missing_at_processor"]) == (1, 3)
    assert SettlementRecord.objects.count() == SettlementMatch.objects.count() == 0
