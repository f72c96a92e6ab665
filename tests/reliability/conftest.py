"""Fixtures of the fault-injection suite: a real web server and real worker/beat processes
against the test database, each started and stopped by PID through ``processes``."""

from __future__ import annotations

import sys

import pytest

from tests.processes import free_port, wait_for, wait_for_log

API_KEY = "reliability-test-api-key-1d5e9a3c7b2f6e0a4c8d"


@pytest.fixture
def start_worker(processes, redis_broker):
    def start(name: str = "worker", *, timeout: float = 60, **env):
        proc = processes.worker(name, **env)
        wait_for_log(processes, name, " ready.", timeout=timeout)
        return proc

    return start


@pytest.fixture
def web_server(processes, redis_broker):
    """gunicorn (gthread: 4 processes x 8 threads) serving Cronhouse on a free port."""
    import requests

    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    argv += ["--workers", "4", "--threads", "8", "--worker-class", "gthread", "--timeout", "60"]
    processes.start("web", argv, JOBS_SECRET_KEY=API_KEY, JOBS_API_RATE_LIMIT="100000/m")
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(f"{url}/health/", timeout=2).status_code in (200, 503)
        except requests.RequestException:
            return False

    wait_for(answers, timeout=60, interval=0.3, message="gunicorn answering /health/")
    return url
