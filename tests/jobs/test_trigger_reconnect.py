"""The HTTP trigger skips Django's per-request health check (a SELECT 1 round trip) and instead
replaces a kept connection that PostgreSQL has dropped: the caller never sees the dead one."""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from jobs.models import JobRun

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def drop_django_connection() -> None:
    """What a PostgreSQL restart does to a connection kept between requests."""
    pid = connection.connection.info.backend_pid
    params = settings.DATABASES["default"]
    dsn = f"host={params['HOST']} port={params['PORT'] or 5432} user={params['USER']} dbname={params['NAME']}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]


def test_a_trigger_on_a_connection_postgresql_dropped_gets_a_new_one_and_queues_the_run(api, make_job):
    first, second = make_job("first"), make_job("second")
    assert api.post("/api/jobs/run", {"job": "first"}).status_code == 202
    old_pid = connection.connection.info.backend_pid

    drop_django_connection()
    response = api.post("/api/jobs/run", {"job": "second"})

    assert response.status_code == 202, response.content
    assert connection.connection.info.backend_pid != old_pid
    assert JobRun.objects.filter(job=second, status=JobRun.Status.QUEUED).count() == 1
    assert JobRun.objects.filter(job=first).count() == 1
