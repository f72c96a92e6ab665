"""Fixtures of the suites that start real processes: Celery workers and beats, gunicorn, the
embedded mode's filesystem broker and headless Chromium (Debian's package) driven by
Playwright against pytest-django's live server. Every process is started and stopped by PID
through ``processes``.

Playwright's sync API runs an event loop in this thread, which makes Django refuse ORM calls
from the test body unless DJANGO_ALLOW_ASYNC_UNSAFE is set; nothing here is async.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.process_group import free_port, wait_for, wait_for_log
from tests.services import service_missing

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

API_KEY = "process-test-api-key-1d5e9a3c7b2f6e0a4c8d"
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _empty(folder) -> None:
    for entry in folder.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


# --- jobs, workers, web -----------------------------------------------------------------------


@pytest.fixture
def seeded_fixtures(transactional_db):
    """``manage.py seed_jobs --with-fixtures``: test-job, test-fail-job, test-sleep-job (and the shipped jobs).

    Returns a function that applies field changes to one of them through the ORM (as an admin would).
    """
    from jobs.models import Job

    call_command("seed_jobs", with_fixtures=True, verbosity=0)

    def tune(name: str, **changes) -> Job:
        job = Job.objects.get(name=name)
        for field, value in changes.items():
            setattr(job, field, value)
        job.full_clean()
        job.save()
        return job

    return tune


@pytest.fixture
def start_worker(processes, redis_broker):
    """Start a Celery worker and wait until it consumes from the broker."""

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


# --- the embedded mode ----------------------------------------------------------------------


@pytest.fixture
def embedded_broker():
    """The filesystem broker folder this test process and its workers share, emptied around the test.

    Workers started by ``processes`` inherit CRONHOUSE_VAR_DIR (and CRONHOUSE_BROKER_DIR, if
    set), so they read the same ``settings.BROKER_DIR`` this process publishes into. Messages
    left over from an earlier test would otherwise be consumed by this test's worker.
    """
    if not settings.EMBEDDED_BROKER:
        pytest.fail("embedded-mode tests need the filesystem:// broker (unset CELERY_BROKER_URL)")
    queue = settings.BROKER_DIR / "queue"
    _empty(queue)
    yield settings.BROKER_DIR
    _empty(queue)


@pytest.fixture
def private_redis(processes):
    """A redis-server of this test's own on a free port, started and stopped by PID: a test that
    stops the broker stops this one, never the shared server."""
    if shutil.which("redis-server") is None:
        service_missing("redis-server")
    import redis

    port = free_port()
    argv = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    argv += ["--bind", "127.0.0.1", "--daemonize", "no"]
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)

    def up() -> bool:
        try:
            return client.ping()
        except redis.RedisError:
            return False

    class PrivateRedis:
        url = f"redis://127.0.0.1:{port}/0"
        proc = None

        def start(self) -> None:
            self.proc = processes.start("redis-server", argv)
            wait_for(up, timeout=10, message=f"redis-server on port {port}")

        def stop(self) -> None:
            processes.kill(self.proc, signal.SIGTERM)
            assert not up()

    server = PrivateRedis()
    server.start()
    yield server
    client.close()


# --- the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium():
    executable = shutil.which("chromium")
    if executable is None:
        # Session fixtures are set up before the autouse marker check, so this one applies the rule.
        service_missing("chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


# The staff user of the dashboard's browser tests logs in with this.
BROWSER_PASSWORD = "pw-browser-123456789"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        "ops", "ops@example.com", BROWSER_PASSWORD, is_staff=True, is_superuser=True
    )


@pytest.fixture
def fast_refresh(settings):
    """Live pages poll every second, so a test sees an update soon."""
    settings.JOBS_DASHBOARD_REFRESH_SECONDS = 1


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def broker_emptied():
    """The broker this test's worker consumes, emptied first so no stale message reaches it."""
    if settings.EMBEDDED_BROKER:
        _empty(settings.BROKER_DIR / "queue")
    else:
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@pytest.fixture
def worker(processes, broker_emptied):
    """A real Celery worker on this test's database and broker (Redis, or filesystem:// embedded)."""
    processes.worker("worker")
    log = processes.log_dir / "worker.log"
    wait_for(lambda: log.exists() and " ready." in log.read_text(errors="replace"), timeout=60, message="worker ready")
    return processes


def wait_until(page, expression: str, timeout: float = 30.0) -> None:
    """Poll ``expression`` (page.evaluate's argument) until it is truthy. Not page.wait_for_function:
    Playwright runs its predicate through eval(), which the pages' Content-Security-Policy refuses."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        page.wait_for_timeout(100)


def log_in(page, live_server, username: str, password: str, next_url: str = "/dashboard/") -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
