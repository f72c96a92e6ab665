"""A Redis outage (rate-limit cache and Celery broker both on it, CACHE_URL unset) never turns a
trigger into an error page: the run is recorded queued and left for process-jobs to send."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from jobs.models import JobRun
from jobs.running.maintenance import FRESH_RUN_SECONDS, runs_to_dispatch
from tests.jobs.conftest import API_KEY
from tests.process_group import free_port, process_env

pytestmark = pytest.mark.django_db(transaction=True)

TRIGGER = """
import json
import sys

import django

django.setup()
from django.test import Client

response = Client(raise_request_exception=False).post(
    "/api/jobs/run", json.dumps({"job": "nightly"}), content_type="application/json",
    HTTP_AUTHORIZATION="Bearer " + sys.argv[1],
)
print(json.dumps({"status": response.status_code, "type": response["Content-Type"], "body": response.content.decode()}))
"""


def test_it_records_an_api_trigger_while_redis_is_down_and_answers_202(make_job):
    job = make_job("nightly")
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    done = subprocess.run(
        [sys.executable, "-c", TRIGGER, API_KEY],
        cwd=django_settings.BASE_DIR,
        env=process_env(CELERY_BROKER_URL=dead_redis, CACHE_URL="", JOBS_SECRET_KEY=API_KEY),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert (answer["status"], answer["type"]) == (202, "application/json"), answer
    run = JobRun.objects.get(job=job)
    assert json.loads(answer["body"])["run_id"] == run.pk
    assert (run.status, run.triggered_by, run.dispatched_at) == (JobRun.Status.QUEUED, JobRun.Trigger.API, None)
    # process-jobs' sweep sends it once the run is past its own publish window.
    later = timezone.now() + timedelta(seconds=FRESH_RUN_SECONDS + 1)
    assert list(runs_to_dispatch(later).values_list("pk", flat=True)) == [run.pk]
    assert "rate-limit cache" in done.stderr and f"dispatch failed run={run.pk}" in done.stderr
