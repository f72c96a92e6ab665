"""Fixtures of the operations tests: a pinned clock helper, alert recipients, an API key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

API_KEY = "ops-test-api-key-4b8e2f6a1c9d3e7f5a0b"
# A fixed, ordinary moment: Monday 2026-11-23 12:00:30 UTC.
NOON = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def ops_settings(settings):
    settings.JOBS_SECRET_KEY = API_KEY
    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com"]
    settings.JOBS_API_RATE_LIMIT = "100000/m"
    return settings


@pytest.fixture
def old_job(make_job):
    """make_job, but the job has existed for two days (so its past slots count)."""
    from jobs.models import Job

    def make(name: str = "sample-job", **fields):
        job = make_job(name, **fields)
        Job.objects.filter(pk=job.pk).update(created_at=NOON - timedelta(days=2))
        job.refresh_from_db()
        return job

    return make
