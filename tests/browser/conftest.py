"""Headless Chromium (Debian's package) driven by Playwright against pytest-django's live server.

Playwright's sync API runs an event loop in this thread, which makes Django refuse ORM calls
from the test body unless DJANGO_ALLOW_ASYNC_UNSAFE is set; nothing here is async.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

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


@pytest.fixture(scope="session")
def chromium():
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed")  # the autouse marker check fails this under CI first
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


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def broker_emptied():
    """The broker this test's worker consumes, emptied first so no stale message reaches it."""
    if settings.EMBEDDED_BROKER:
        queue = settings.BROKER_DIR / "queue"
        for entry in queue.iterdir():
            entry.unlink(missing_ok=True) if entry.is_file() else shutil.rmtree(entry, ignore_errors=True)
    else:
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@pytest.fixture
def worker(processes, broker_emptied):
    """A real Celery worker on this test's database and broker (Redis, or filesystem:// embedded)."""
    from tests.processes import wait_for

    processes.worker("worker")
    log = processes.log_dir / "worker.log"
    wait_for(lambda: log.exists() and " ready." in log.read_text(errors="replace"), timeout=60, message="worker ready")
    return processes


def log_in(page, live_server, username: str, password: str, next_url: str = "/dashboard/") -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
