"""Shared fixtures.

Service-backed tests are marked ``postgres`` / ``redis``. Without the service they skip on a
developer machine and FAIL under CI=true: CI must never pass by skipping what it is meant
to prove.
"""

from __future__ import annotations

import os

import pytest
from django.db import connection

from tests.services import service_missing as _missing


def redis_url() -> str | None:
    url = os.environ.get("CELERY_BROKER_URL", "")
    return url if url.startswith("redis://") else None


@pytest.fixture(autouse=True)
def _require_services(request):
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _missing("PostgreSQL (set DATABASE_URL=postgres://...)")
    if request.node.get_closest_marker("redis"):
        url = redis_url()
        if url is None:
            _missing("Redis (set CELERY_BROKER_URL=redis://...)")
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except redis.RedisError:
            _missing(f"Redis at {url}")


@pytest.fixture(autouse=True)
def _demo_stand_ins_off(request):
    """The embedded pass's settings turn the demo's stand-ins on (config/settings.py); every test
    starts without them, as in the PostgreSQL pass. tests/accounts/test_demo_stand_ins.py turns
    them on against a live server."""
    from django.conf import settings as current

    if current.EMBEDDED_DEMO_SERVICES:
        settings = request.getfixturevalue("settings")
        settings.EMBEDDED_DEMO_SERVICES = False
        settings.JOBS_HTTP_GUARD_LOOPBACK_PORTS = frozenset()
        settings.ACCOUNTS_STRIPE_API_KEY = settings.ACCOUNTS_STRIPE_API_BASE = ""
        settings.ACCOUNTS_CREDIT_PROVIDERS = []


@pytest.fixture
def outbox(settings):
    """Django's locmem backend; returns mail.outbox (emptied)."""
    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    return mail.outbox


@pytest.fixture
def make_job(db):
    from jobs.catalog.validation import job_full_clean
    from jobs.models import Job

    def make(name: str = "sample-job", **fields) -> Job:
        fields.setdefault("command", "test_job")
        if "interval_seconds" not in fields:
            fields.setdefault("cron_expression", "* * * * *")
        job = Job(name=name, **fields)
        job_full_clean(job)
        job.save()
        return job

    return make


@pytest.fixture
def processes(tmp_path, request):
    """Real processes for this test; all stopped by PID at the end, logs shown on failure."""
    from tests.process_group import ProcessGroup

    group = ProcessGroup(tmp_path)
    yield group
    group.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(group.log_tails())


@pytest.fixture
def redis_broker(request):
    """The Redis db this run owns, emptied so stale messages from earlier tests cannot interfere."""
    import redis

    url = redis_url()
    if url is None:
        _missing("Redis (set CELERY_BROKER_URL=redis://...)")
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def _require_embedded(request):
    if request.node.get_closest_marker("embedded") and connection.vendor != "sqlite":
        pytest.fail("embedded-mode tests run in the SQLite pass (pytest -m embedded without DATABASE_URL)")


# --- browser tests (surfaces) ------------------------------------------------------------


@pytest.fixture(autouse=True)
def _require_browser(request):
    """Browser tests need Debian's chromium (bin/test installs it); never a downloaded one."""
    if request.node.get_closest_marker("browser"):
        import shutil

        if shutil.which("chromium") is None:
            _missing("chromium (apt-get install chromium)")
        try:
            import playwright  # noqa: F401
        except ImportError:
            _missing("the playwright package (pip install -r requirements.txt)")
