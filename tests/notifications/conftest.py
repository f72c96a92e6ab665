"""Fixtures for the notifications tests: an outbox, a network fence, a loopback receiver.

``no_network`` patches the socket layer so that a connection to anything but loopback, or
a DNS lookup of a name the test did not fake, FAILS the test (``pytest.fail`` raises a
BaseException, which no ``except Exception`` in the code under test can swallow). The guard
tests therefore cannot leave the machine even if the guard were broken.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery import current_app

from notifications import webhooks


@dataclass
class Fence:
    fake_dns: dict[str, list[str]] = field(default_factory=dict)
    connects: list[tuple] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)

    def resolve(self, host: str, answers: list[str] | callable) -> None:
        self.fake_dns[host] = answers


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def no_network(monkeypatch):
    """Only loopback connections; DNS only for names in ``fence.fake_dns`` (and literals)."""
    fence = Fence()
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        host = host.decode() if isinstance(host, bytes) else host
        fence.lookups.append(host)
        if host in fence.fake_dns:
            answers = fence.fake_dns[host]
            answers = answers() if callable(answers) else answers
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port, 0, 0) if ":" in a else (a, port),
                )
                for a in answers
            ]
        try:
            ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            pytest.fail(f"DNS lookup of {host!r} attempted: only faked names may be resolved in this test")
        return real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    def check(address) -> None:
        host = address[0] if isinstance(address, tuple) else str(address)
        fence.connects.append(address)
        if not _is_loopback(host):
            pytest.fail(f"connection to non-loopback address {address!r} attempted")

    def connect(self, address):
        check(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(address)
        return real_connect_ex(self, address)

    def create_connection(address, *args, **kwargs):
        pytest.fail(f"socket.create_connection({address!r}) bypassed the guard")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return fence


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


class Receiver:
    """An HTTP server on 127.0.0.1 that records requests. ``routes[path] = (status, headers, body)``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                receiver.requests.append(Received(self.path, dict(self.headers), body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, headers, payload = receiver.routes.get(self.path, (200, {}, b'{"ok": true}'))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET = do_PUT = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, status: int, *, headers: dict | None = None, body: bytes = b"") -> None:
        self.routes[path] = (status, headers or {}, body)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(no_network):
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def allow_loopback(settings):
    """The explicit test setting that lets the guard reach the loopback receiver."""
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True


@pytest.fixture
def celery_sends(monkeypatch):
    """Records Celery publishes of webhook deliveries instead of talking to a broker."""
    sent: list[dict] = []

    def send_task(name, args=(), countdown=None, **kwargs):
        sent.append({"name": name, "args": list(args), "countdown": countdown})

    monkeypatch.setattr(current_app, "send_task", send_task)
    return sent


@pytest.fixture
def inline_worker(monkeypatch):
    """Runs each published delivery task at once, as a worker would (countdowns are recorded, not waited)."""
    published: list[dict] = []

    def send_task(name, args=(), countdown=None, **kwargs):
        published.append({"name": name, "args": list(args), "countdown": countdown})
        if countdown is None:
            webhooks.webhook_deliver(delivery_id=args[0])

    monkeypatch.setattr(current_app, "send_task", send_task)
    return published


def json_body(received: Received) -> dict:
    return json.loads(received.body)
