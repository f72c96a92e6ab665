"""A local server speaking the Stripe endpoints the accounts jobs use: list, retrieve and cancel
subscriptions (``/v1/subscriptions``), with pagination, 404, 429 and 5xx answers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FakeStripe:
    """Pages of ``page_size``; ``failures`` is a list of statuses answered (in order) before the
    real answer to the next request; every request is recorded."""

    def __init__(self) -> None:
        self.subscriptions: list[dict] = []
        self.page_size = 2
        self.failures: list[int] = []
        self.refuse = None  # (path, query) -> a status to answer instead, or None
        self.requests: list[tuple[str, dict, str]] = []
        self.cancelled: list[str] = []  # ids cancelled (DELETE answered 200), in order
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url, query = self.received()
                if self.refused(url.path, query):
                    return
                if url.path == "/v1/subscriptions":
                    return self.answer(200, fake.page(query))
                found = self.subscription(url.path)
                if found is not None:
                    return self.answer(200, found)

            def do_DELETE(self) -> None:
                """Cancel now, as Stripe does: the subscription comes back ``canceled``; one that
                is canceled already is refused with Stripe's 400."""
                url, query = self.received()
                if self.refused(url.path, query):
                    return
                found = self.subscription(url.path)
                if found is None:
                    return
                if found["status"] == "canceled":
                    error = {
                        "type": "invalid_request_error",
                        "message": "A canceled subscription can only update its cancellation_details and metadata.",
                    }
                    return self.answer(400, {"error": error})
                found.update(status="canceled", canceled_at=1, ended_at=1)
                fake.cancelled.append(found["id"])
                return self.answer(200, found)

            def received(self):
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.requests.append((url.path, query, self.headers.get("Authorization", "")))
                return url, query

            def refused(self, path: str, query: dict) -> bool:
                status = fake.refuse(path, query) if fake.refuse else None
                if status is None and fake.failures:
                    status = fake.failures.pop(0)
                if status is None:
                    return False
                headers = {"Stripe-Should-Retry": "true"} if status == 429 else {}
                self.answer(status, {"error": {"type": "api_error", "message": "try later"}}, headers)
                return True

            def subscription(self, path: str) -> dict | None:
                """The subscription a path names; None after answering 404."""
                sub_id = path.rsplit("/", 1)[-1]
                found = [s for s in fake.subscriptions if s["id"] == sub_id]
                if found:
                    return found[0]
                error = {"type": "invalid_request_error", "code": "resource_missing", "message": "No such subscription"}
                self.answer(404, {"error": error})
                return None

            def answer(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def page(self, query: dict) -> dict:
        rows = self.subscriptions
        if "starting_after" in query:
            ids = [s["id"] for s in rows]
            rows = rows[ids.index(query["starting_after"]) + 1 :]
        size = min(int(query.get("limit", 10)), self.page_size)
        return {"object": "list", "url": "/v1/subscriptions", "data": rows[:size], "has_more": len(rows) > size}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
