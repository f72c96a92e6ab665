"""A trigger after PostgreSQL dropped the web process's kept connection (a restart does that) is
served on a new connection: Django's per-request health check (CONN_HEALTH_CHECKS) replaces it."""

from __future__ import annotations

import json

import psycopg
import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test import RequestFactory

from jobs.models import JobRun
from tests.jobs.conftest import API_KEY

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def drop_django_connection() -> None:
    """What a PostgreSQL restart does to a connection kept between requests."""
    pid = connection.connection.info.backend_pid
    params = settings.DATABASES["default"]
    dsn = f"host={params['HOST']} port={params['PORT'] or 5432} user={params['USER']} dbname={params['NAME']}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]


def serve(body: dict) -> tuple[str, dict]:
    """One request through Django's WSGI handler, as gunicorn calls it (the test client skips
    the request_started housekeeping that runs the health check)."""
    request = RequestFactory().post(
        "/api/jobs/run", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {API_KEY}"
    )
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = status

    content = b"".join(WSGIHandler()(request.environ, start_response))
    return answer["status"], json.loads(content)


def test_a_trigger_on_a_connection_postgresql_dropped_gets_a_new_one_and_queues_the_run(make_job):
    first, second = make_job("first"), make_job("second")
    assert serve({"job": "first"})[0].startswith("202")
    connection.ensure_connection()
    old_pid = connection.connection.info.backend_pid

    drop_django_connection()
    status, body = serve({"job": "second"})

    assert status.startswith("202"), body
    assert JobRun.objects.filter(job=second, status=JobRun.Status.QUEUED).count() == 1
    assert connection.connection.info.backend_pid != old_pid
    assert JobRun.objects.filter(job=first).count() == 1
