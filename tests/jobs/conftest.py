"""Fixtures of the job-platform tests: a staff login, the API key, a receiver on loopback, a pinned
clock and alert recipients."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.fernet import Fernet
from django.forms.models import model_to_dict

API_KEY = "surfaces-test-api-key-7f3a9c1e5b2d8f4a6c0e"
PASSWORD = "pw-staff-123456789"
# A fixed, ordinary moment: Monday 2026-11-23 12:00:30 UTC.
NOON = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def surfaces_settings(settings):
    settings.JOBS_SECRET_KEY = API_KEY
    settings.JOBS_SECRETS_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    settings.JOBS_API_RATE_LIMIT = "100000/m"
    settings.JOBS_ACTION_RATE_LIMIT = "100000/m"
    # The dashboard's day totals counted for every request: no test sees another's.
    settings.JOBS_DASHBOARD_TOTALS_SECONDS = 0
    settings.JOBS_METRICS_WINDOW_CACHE_SECONDS = 0
    # Rate-limit counters in a private memory cache: tests never see each other's counts and
    # never flush the Redis db a worker may be using (the Redis path has its own test).
    settings.CACHES = {
        **settings.CACHES,
        "surfaces-tests": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "surfaces"},
    }
    settings.RATELIMIT_USE_CACHE = "surfaces-tests"
    from django.core.cache import caches

    caches["surfaces-tests"].clear()
    return settings


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("staff", "staff@example.com", PASSWORD, is_staff=True)


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.com", PASSWORD)


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    client.user = superuser
    return client


@pytest.fixture
def api(client):
    """A client that sends the bearer token; ``api.post(url, data)`` sends JSON."""

    class Api:
        def post(self, url, data=None, *, token=API_KEY, raw=None, **extra):
            body = raw if raw is not None else json.dumps(data if data is not None else {})
            headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
            return client.post(url, body, content_type="application/json", **headers, **extra)

        def get(self, url, *, token=API_KEY, **extra):
            headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
            return client.get(url, **headers, **extra)

    return Api()


def job_form_data(job, **changes) -> dict:
    """What the admin's change form would post for ``job``, with ``changes`` applied."""
    from jobs.forms import JobAdminForm

    form = JobAdminForm(instance=job)
    data = {}
    for name in form.fields:
        value = model_to_dict(job).get(name, form.initial.get(name))
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        if name == "config":
            value = json.dumps(value or {})
        data[name] = "" if value is None else value
    data.update({"runs-TOTAL_FORMS": 0, "runs-INITIAL_FORMS": 0})
    data.update({"operator_groups-TOTAL_FORMS": 0, "operator_groups-INITIAL_FORMS": 0})
    data.update(changes)
    return {k: v for k, v in data.items() if v is not False}


class Receiver:
    """An HTTP server on 127.0.0.1 answering as ``mode`` says: ok, fail (500 echoing the
    request's headers), slow (answers after ``delay``), redirect (302 to ``location``)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 3.0
        self.location = ""
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                receiver.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                if receiver.mode == "slow":
                    time.sleep(receiver.delay)
                if receiver.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", receiver.location)
                    self.end_headers()
                    return
                status, payload = (200, b'{"ok": true}') if receiver.mode in ("ok", "slow") else (500, b"")
                if receiver.mode == "fail":
                    payload = ("upstream exploded; you sent: " + json.dumps(dict(self.headers))).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def make_handler(db):
    from core.crypto import secret_encrypt
    from jobs.models import WebhookHandler

    def make(name="hook", *, url="https://hooks.example.com/run", secret="", **fields) -> WebhookHandler:
        return WebhookHandler.objects.create(name=name, url=url, secret=secret_encrypt(secret), **fields)

    return make


@pytest.fixture
def make_webhook_job(make_job, make_handler):
    def make(name="call-hook", handler=None, **fields):
        handler = handler or make_handler()
        return make_job(name, command="", webhook_handler=handler, **fields)

    return make


@pytest.fixture
def alert_recipients(settings):
    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com"]
    return settings


@pytest.fixture
def old_job(make_job):
    """make_job, but the job has existed for two days and beat has recorded none of its slots."""
    from tests.scheduling import owe_since

    def make(name: str = "sample-job", **fields):
        return owe_since(make_job(name, **fields), NOON - timedelta(days=2))

    return make


# --- who may do what (jobs.permissions.access): the four roles of the permission tests --------------------


def grant(user, *codenames: str):
    from django.contrib.auth.models import Permission

    for codename in codenames:
        app, _, name = codename.partition(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=name))
    return user


@pytest.fixture
def roles(django_user_model, make_job):
    """Two jobs, each limited to its team's group, and four staff users: ``none`` (staff, no
    permission), ``reader`` (sees jobs and runs), ``billing`` (a Billing operator: sees and runs,
    member of Billing only) and ``boss`` (superuser)."""
    from django.contrib.auth.models import Group

    from jobs.models import JobOperatorGroup

    billing_group, notifications_group = Group.objects.create(name="Billing"), Group.objects.create(name="Notify")
    payouts, notify = make_job("generate-payouts"), make_job("process-notifications")
    JobOperatorGroup.objects.create(job=payouts, group=billing_group)
    JobOperatorGroup.objects.create(job=notify, group=notifications_group)
    make = django_user_model.objects.create_user
    reader = grant(make("reader", password=PASSWORD, is_staff=True), "jobs.view_job", "jobs.view_jobrun")
    reader.groups.add(billing_group, notifications_group)
    billing = grant(
        make("billing", password=PASSWORD, is_staff=True), "jobs.view_job", "jobs.view_jobrun", "jobs.run_job"
    )
    billing.groups.add(billing_group)
    users = {
        "none": make("none", password=PASSWORD, is_staff=True),
        "reader": reader,
        "billing": billing,
        "boss": django_user_model.objects.create_superuser("boss", "boss@example.com", PASSWORD),
    }
    return {"users": users, "payouts": payouts, "notify": notify}
