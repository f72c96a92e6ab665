"""A disbursement provider on 127.0.0.1 that speaks the API in docs/billing.md, for the payout tests.

It pays at most once per Idempotency-Key and counts the payments it made per key, so a test can
see that a retried request did not pay twice. Knobs: ``fail_next`` (statuses answered before a
request is looked at, one per request), ``delay_after_accept`` (seconds slept after a payout was
accepted and paid, before answering: the client's timeout then loses the answer),
``answer_status`` (the status new payouts get), ``page_size`` of GET /v1/payouts.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KEY = "provider-test-key-7f3a9c2e41"


class Provider:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.payments: dict[str, int] = {}  # Idempotency-Key -> payments made for it
        self.payouts: dict[str, dict] = {}  # Idempotency-Key -> the payout as the provider keeps it
        self.fail_next: list[int] = []
        self.delay_after_accept = 0.0
        self.answer_status = "pending"
        self.page_size = 100
        self.lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                provider.answer(self, "POST")

            def do_GET(self) -> None:
                provider.answer(self, "GET")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def settle(self, reference: str, status: str, **fields) -> None:
        """The provider finishes a payout (what reconcile-payouts will read)."""
        self.payouts[reference].update(status=status, **fields)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- the API --------------------------------------------------------------------------

    def answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        self.requests.append({"method": method, "path": handler.path, "headers": dict(handler.headers), "body": body})
        if self.fail_next:
            return self.send(handler, self.fail_next.pop(0), {"error": "try again later"})
        if handler.headers.get("Authorization") != f"Bearer {KEY}":
            return self.send(handler, 401, {"error": "bad key"})
        if method == "POST" and urlsplit(handler.path).path == "/v1/payouts":
            return self.create(handler, json.loads(body))
        if method == "GET" and urlsplit(handler.path).path == "/v1/payouts":
            return self.list(handler, parse_qs(urlsplit(handler.path).query))
        return self.send(handler, 404, {"error": "no such route"})

    def create(self, handler: BaseHTTPRequestHandler, payload: dict) -> None:
        key = handler.headers.get("Idempotency-Key")
        if not key:
            return self.send(handler, 400, {"error": "Idempotency-Key is required"})
        if payload.get("destination") == "owner-refused":
            return self.send(handler, 422, {"error": "unknown destination"})
        with self.lock:
            new = key not in self.payouts
            if new:
                self.payments[key] = self.payments.get(key, 0) + 1
                self.payouts[key] = {
                    "id": f"po_{len(self.payouts) + 1}",
                    "status": self.answer_status,
                    "reference": payload["reference"],
                    "amount": payload["amount"],
                    "currency": payload["currency"],
                    "destination": payload["destination"],
                }
        if new and self.delay_after_accept:
            time.sleep(self.delay_after_accept)
        self.send(handler, 201 if new else 200, self.payouts[key])

    def list(self, handler: BaseHTTPRequestHandler, query: dict) -> None:
        items = list(self.payouts.values())
        start = int(query.get("cursor", ["0"])[0])
        page = items[start : start + self.page_size]
        more = start + self.page_size < len(items)
        self.send(handler, 200, {"payouts": page, "next_cursor": str(start + self.page_size) if more else None})

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the timeout tests)
