"""A local stand-in for Intercom's contacts and tags API on 127.0.0.1 (threaded http.server).

It implements what intercom-sync uses, as Intercom documents it: POST /contacts/search (by
external_id), POST /contacts, PUT /contacts/{id}, POST /tags (create, or return the tag of that
name), POST /contacts/{id}/tags and DELETE /contacts/{id}/tags/{tag_id}; a bearer token is
required. Faults are queued with ``fail``: a status (429 carries ``X-RateLimit-Reset``), or a
create that is stored but answered 500 (the client cannot know it worked).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Fault:
    method: str
    path: str  # regular expression on the path
    status: int
    reset_in: float | None = None  # 429: X-RateLimit-Reset = now + this (a Unix time, whole seconds)
    after_create: bool = False  # POST /contacts: store the contact, then answer the status


@dataclass
class Seen:
    method: str
    path: str
    at: float
    status: int
    body: dict = field(default_factory=dict)


class IntercomStandIn:
    def __init__(self, token: str) -> None:
        self.token = token
        self.contacts: dict[str, dict] = {}
        self.tags: dict[str, dict] = {}  # by lower-case name
        self.contact_tags: dict[str, set[str]] = {}
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                stand_in.handle(self)

            do_PUT = do_DELETE = do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, method: str, path: str, status: int, *, times: int = 1, **options) -> None:
        self.faults.extend(Fault(method, path, status, **options) for _ in range(times))

    # --- what tests read ------------------------------------------------------------------

    def by_external_id(self) -> dict[str, dict]:
        return {c["external_id"]: c for c in self.contacts.values()}

    def tag_names(self, contact_id: str) -> set[str]:
        names = {tag["id"]: tag["name"] for tag in self.tags.values()}
        return {names[t] for t in self.contact_tags.get(contact_id, set())}

    def calls(self, method: str | None = None, path: str = "") -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method) and re.fullmatch(path or ".*", s.path)]

    # --- the API ----------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"{}")
        with self.lock:
            status, payload, headers = self.answer(request.command, request.path, body, request.headers)
            self.seen.append(Seen(request.command, request.path, time.time(), status, body))
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)

    def answer(self, method: str, path: str, body: dict, headers) -> tuple[int, dict, dict]:
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"type": "error.list", "errors": [{"code": "unauthorized"}]}, {}
        fault = next((f for f in self.faults if f.method == method and re.fullmatch(f.path, path)), None)
        if fault is not None:
            self.faults.remove(fault)
            if fault.after_create:
                self.create(body)
            elif fault.status == 429:
                reset = int(time.time() + (fault.reset_in or 1)) + 1
                return (
                    429,
                    {"type": "error.list", "errors": [{"code": "rate_limit_exceeded"}]},
                    {"X-RateLimit-Reset": str(reset)},
                )
            return fault.status, {"type": "error.list", "errors": [{"code": "server_error"}]}, {}
        return self.route(method, path, body)

    def route(self, method: str, path: str, body: dict) -> tuple[int, dict, dict]:
        if (method, path) == ("POST", "/contacts/search"):
            query = body.get("query", {})
            found = [
                c
                for c in self.contacts.values()
                if query.get("field") == "external_id" and c["external_id"] == query.get("value")
            ]
            return (
                200,
                {
                    "type": "list",
                    "data": found,
                    "total_count": len(found),
                    "pages": {"type": "pages", "page": 1, "per_page": 50, "total_pages": 1},
                },
                {},
            )
        if (method, path) == ("POST", "/contacts"):
            if body.get("external_id") in self.by_external_id():
                return 409, {"type": "error.list", "errors": [{"code": "conflict"}]}, {}
            return 200, self.create(body), {}
        if (method, path) == ("POST", "/tags"):
            tag = self.tags.setdefault(
                body["name"].lower(), {"type": "tag", "id": str(next(self.ids)), "name": body["name"]}
            )
            return 200, tag, {}
        if match := re.fullmatch(r"/contacts/([^/]+)", path):
            contact = self.contacts.get(match[1])
            if contact is None or method != "PUT":
                return 404, {"type": "error.list", "errors": [{"code": "not_found"}]}, {}
            contact.update({k: v for k, v in body.items() if k in ("external_id", "email", "name", "phone", "role")})
            return 200, contact, {}
        if match := re.fullmatch(r"/contacts/([^/]+)/tags(?:/([^/]+))?", path):
            if match[1] not in self.contacts:
                return 404, {"type": "error.list", "errors": [{"code": "not_found"}]}, {}
            tagged = self.contact_tags.setdefault(match[1], set())
            tag_id = body.get("id") if method == "POST" else match[2]
            (tagged.add if method == "POST" else tagged.discard)(tag_id)
            tag = next((t for t in self.tags.values() if t["id"] == tag_id), {"id": tag_id})
            return 200, {"type": "tag", **tag}, {}
        return 404, {"type": "error.list", "errors": [{"code": "not_found"}]}, {}

    def create(self, body: dict) -> dict:
        contact_id = f"c{next(self.ids)}"
        contact = {"type": "contact", "id": contact_id, "role": body.get("role", "user")}
        contact.update({k: body.get(k) for k in ("external_id", "email", "name", "phone")})
        self.contacts[contact_id] = contact
        return contact
