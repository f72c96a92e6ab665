"""Overlap policies under 20 parallel API triggers through a real gunicorn, while a real worker runs
the job's active run: "queue one" keeps exactly one run waiting and starts it when the active run
ends; "replace" stops the active run and leaves exactly one of the 20 to run after it."""

from __future__ import annotations

from collections import Counter

import pytest

from jobs.models import Job, JobRun
from jobs.models.jobs import WAITING_LANE
from jobs.running.runner import run_trigger
from tests.process_group import wait_for, wait_for_log

from .conftest import API_KEY
from .helpers import api_triggers_at_once, fresh

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.processes,
]
TRIGGERS = 20
STARTUP_TIMEOUT = 90
FAST_CANCEL = {"JOBS_HEARTBEAT_SECONDS": "0.5", "JOBS_CANCEL_GRACE_SECONDS": "2"}


@pytest.fixture
def running_job(processes, web_server, seeded_fixtures):
    """test-sleep-job under ``overlap``, its first run running on a real worker."""

    def start(overlap: str, seconds: float) -> tuple[Job, JobRun]:
        processes.worker("worker", **FAST_CANCEL)
        wait_for_log(processes, "worker", " ready.", timeout=STARTUP_TIMEOUT)
        job = seeded_fixtures("test-sleep-job", overlap=overlap, config={"seconds": seconds}, max_retries=0)
        first = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL).run
        wait_for(lambda: fresh(first).status == "running", timeout=STARTUP_TIMEOUT, message="the first run to start")
        return job, first

    return start


def settled(job: Job, timeout: float = 90) -> list[JobRun]:
    wait_for(
        lambda: not JobRun.objects.filter(job=job, status__in=JobRun.ACTIVE_STATUSES).exists(),
        timeout=timeout,
        message="every run of the job to end",
    )
    return list(JobRun.objects.filter(job=job).order_by("pk"))


def test_it_keeps_exactly_one_run_waiting_under_queue_one(running_job, web_server):
    job, first = running_job(Job.Overlap.QUEUE_ONE, seconds=4)
    answers = api_triggers_at_once(web_server, job.name, API_KEY, TRIGGERS)

    assert Counter(status for status, _ in answers) == {202: 1, 409: TRIGGERS - 1}, answers[:3]
    waiting_id = next(body["run_id"] for status, body in answers if status == 202)
    assert all(body.get("behind_active_run") for status, body in answers if status == 202)
    waiting = JobRun.objects.get(pk=waiting_id)
    assert (waiting.status, waiting.lane) == ("queued", WAITING_LANE)
    assert fresh(first).status == "running"

    runs = settled(job)
    assert Counter(run.status for run in runs) == {"succeeded": 2, "skipped": TRIGGERS - 1}
    first, waiting = fresh(first), fresh(waiting)
    # Started when the active one ended, never beside it.
    assert waiting.status == "succeeded" and waiting.started_at >= first.finished_at


def test_it_leaves_one_run_of_twenty_replacing_the_active_one_under_replace(running_job, web_server):
    job, first = running_job(Job.Overlap.REPLACE, seconds=60)
    answers = api_triggers_at_once(web_server, job.name, API_KEY, TRIGGERS)
    assert Counter(status for status, _ in answers) == {202: TRIGGERS}, answers[:3]
    # The survivor sleeps briefly: the worker reads the job as it is when it claims the run.
    job.config = {"seconds": 0.5}
    job.save()

    runs = settled(job)
    first = next(run for run in runs if run.pk == first.pk)
    assert first.status == "cancelled" and first.cancelled_by == "overlap policy"
    new = [run for run in runs if run.pk != first.pk]
    assert Counter(run.status for run in new) == {"cancelled": TRIGGERS - 1, "succeeded": 1}
    survivor = next(run for run in new if run.status == "succeeded")
    assert survivor.started_at >= first.finished_at
    # Two runs of the job never ran at once: a run replaced after it had started (a trigger that
    # came once it was running) had ended before the next one started.
    started = sorted((run for run in runs if run.started_at), key=lambda run: run.started_at)
    assert all(later.started_at >= earlier.finished_at for earlier, later in zip(started, started[1:], strict=False))
