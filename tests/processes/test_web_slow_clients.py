"""gunicorn started as the Procfile starts it survives clients that promise a body and never send
it: other requests are still answered at once, and each half-sent request is answered or closed
within a bounded time (core/slow_clients.py, docs/operations.md "Serving")."""

from __future__ import annotations

import shlex
import socket
import sys
import time

import pytest
import requests
from django.conf import settings

from tests.process_group import free_port, wait_for

from .conftest import API_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

# Longer than /health/ may take below, so a stalled worker cannot pass for a free one.
CLIENT_TIMEOUT = 5


def procfile_web_argv(port: int) -> list[str]:
    """The Procfile's web command, bound to a free loopback port."""
    line = next(line for line in (settings.BASE_DIR / "Procfile").read_text().splitlines() if line.startswith("web:"))
    argv = shlex.split(line.removeprefix("web:").replace("0.0.0.0:${PORT:-8000}", f"127.0.0.1:{port}"))
    assert argv[0] == "gunicorn" and f"127.0.0.1:{port}" in argv
    return [sys.executable, "-m", "gunicorn", *argv[1:]]


def half_sent(port: int, request_head: str) -> socket.socket:
    """A connection that sends the headers of a 1000-byte body and then nothing."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    connection.sendall(request_head.replace("\n", "\r\n").encode() + b"\r\n")
    return connection


def head(path: str, **headers: str) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Length: 1000"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return "\n".join(lines) + "\n"


def health_status(port: int, timeout: float) -> int | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/health/", timeout=timeout).status_code
    except requests.RequestException:
        return None


@pytest.fixture
def procfile_web(processes, transactional_db):
    port = free_port()
    env = {"JOBS_SECRET_KEY": API_KEY, "WEB_CLIENT_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT)}
    processes.start("web", procfile_web_argv(port), **env)
    wait_for(lambda: health_status(port, 2), timeout=60, interval=0.3, message="gunicorn answering /health/")
    return port


def test_it_answers_others_and_ends_half_sent_requests_in_bounded_time(procfile_web):
    port = procfile_web
    # Any well-formed CSRF cookie makes the CSRF check read the form; no login needed.
    form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "csrftoken=" + "a" * 32}
    api = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    stalled = [half_sent(port, head("/admin/login/", **form)) for _ in range(4)]  # anonymous; CSRF reads the form
    stalled += [half_sent(port, head("/api/jobs/run", **api)) for _ in range(2)]  # the API reads its body
    stalled += [half_sent(port, head("/api/jobs/run", **{"Content-Type": "application/json"}))]  # anonymous
    time.sleep(0.5)  # every one of them is inside the application now

    started = time.monotonic()
    assert health_status(port, 10) in (200, 503)  # answered (503: no beat runs in this test)
    assert time.monotonic() - started < 2

    for connection in stalled:
        connection.settimeout(CLIENT_TIMEOUT + 5)
        first = connection.recv(4096)  # an answer, or b"" when the server closed the connection
        assert first == b"" or first.startswith(b"HTTP/1.1 4"), first[:200]
        connection.close()
    assert time.monotonic() - started < CLIENT_TIMEOUT + 5
