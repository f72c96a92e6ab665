"""/metrics shares the window's run counts between scrapes for JOBS_METRICS_WINDOW_CACHE_SECONDS:
an hour of a busy fleet's runs is read once in that time, not once per scrape."""

from __future__ import annotations

import re

import pytest

from jobs.models import JobRun
from tests.jobs.conftest import API_KEY

pytestmark = pytest.mark.django_db


def failed_recently(client) -> int:
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {API_KEY}").content.decode()
    return int(float(re.search(r'^cronhouse_runs_recent\{status="failed"\} (\S+)$', text, re.M).group(1)))


@pytest.fixture
def private_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "metrics"}}


def test_it_reads_the_window_once_per_cache_period(client, make_job, settings, private_cache):
    settings.JOBS_METRICS_WINDOW_CACHE_SECONDS = 60
    job = make_job("nightly")
    JobRun.objects.create(job=job, status="failed", triggered_by="schedule")
    assert failed_recently(client) == 1

    JobRun.objects.create(job=job, status="failed", triggered_by="schedule")

    assert failed_recently(client) == 1  # the same minute's counts
    settings.JOBS_METRICS_WINDOW_CACHE_SECONDS = 0
    assert failed_recently(client) == 2
