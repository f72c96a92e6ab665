"""A running job's progress: JobCommand.progress writes done / total to its run while it runs,
and the run's JSON shows it with the time left."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from jobs.models import JobRun
from jobs.running.execution import command_execute

pytestmark = pytest.mark.django_db(transaction=True)


def progress_seen(run_id: int, above: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = JobRun.objects.filter(pk=run_id).values_list("progress_done", flat=True).get()
        if done is not None and done > above:
            return done
        time.sleep(0.1)
    raise AssertionError(f"progress of run {run_id} never went above {above}")


def test_it_shows_a_running_jobs_progress_growing_and_in_its_json(staff_client, make_job):
    job = make_job("progress-job", command="test_progress_job")
    run = JobRun.objects.create(job=job, triggered_by="manual", status=JobRun.Status.RUNNING, started_at=timezone.now())
    outcomes = []

    def work():
        try:
            outcomes.append(
                command_execute(
                    command="test_progress_job",
                    config={"delay": 0.003},
                    options={},
                    timeout=60,
                    output_limit=10_000,
                    enforce_timeout=False,
                    run_id=run.pk,
                )
            )
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    try:
        first = progress_seen(run.pk, 0)
        body = staff_client.get(f"/dashboard/runs/{run.pk}/", HTTP_ACCEPT="application/json").json()
        second = progress_seen(run.pk, first)
    finally:
        thread.join(60)
    assert 0 < first < second <= 2000
    progress = body["progress"]
    assert progress["total"] == 2000 and first <= progress["done"] < 2000
    assert 0 < progress["percent"] < 100 and progress["eta_seconds"] is not None
    assert outcomes[0].status == "succeeded" and outcomes[0].summary == {"done": 2000}
    run.refresh_from_db()
    assert (run.progress_done, run.progress_total) == (2000, 2000)


def test_it_writes_no_progress_for_a_command_run_outside_a_run(make_job):
    job = make_job("progress-job", command="test_progress_job")
    run = JobRun.objects.create(job=job, triggered_by="manual", status=JobRun.Status.RUNNING, started_at=timezone.now())
    outcome = command_execute(
        command="test_progress_job",
        config={"items": 10, "delay": 0},
        options={},
        timeout=60,
        output_limit=10_000,
        enforce_timeout=False,
    )
    assert outcome.status == "succeeded"
    run.refresh_from_db()
    assert (run.progress_done, run.progress_total) == (None, None)
