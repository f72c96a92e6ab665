"""Scenario 5: 200 concurrent API triggers of one job, through a real gunicorn (32 threads in 4
processes, each with its own PostgreSQL connection): exactly one run becomes active and each
of the other 199 triggers is a recorded skip naming it. Nothing is lost, nothing doubles."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from .conftest import API_KEY

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.processes,
]
TRIGGERS = 200


def _fire_all(url: str, job_name: str) -> list:
    import requests

    gate = threading.Barrier(TRIGGERS)
    answers: list = [None] * TRIGGERS

    def fire(index: int) -> None:
        session = requests.Session()
        gate.wait()
        try:
            response = session.post(
                f"{url}/api/jobs/run",
                json={"job": job_name},
                headers={"Authorization": f"Bearer {API_KEY}"},
                timeout=60,
            )
            answers[index] = (response.status_code, response.json())
        except requests.RequestException as exc:
            answers[index] = ("error", repr(exc))

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(TRIGGERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def test_it_turns_200_concurrent_triggers_into_one_run_and_199_recorded_skips(web_server, make_job):
    from jobs.models import JobRun

    job = make_job("contended", cron_expression="0 0 1 1 *")
    answers = _fire_all(web_server, job.name)

    assert Counter(status for status, _ in answers) == {202: 1, 409: TRIGGERS - 1}, answers[:5]
    winner = next(body["run_id"] for status, body in answers if status == 202)
    skipped_ids = {body["skipped_run_id"] for status, body in answers if status == 409}
    assert all(body["active_run_id"] == winner for status, body in answers if status == 409)

    runs = list(JobRun.objects.filter(job=job))
    assert len(runs) == TRIGGERS  # every trigger is exactly one row
    by_status = Counter(run.status for run in runs)
    assert by_status == {"queued": 1, "skipped": TRIGGERS - 1}
    assert {run.pk for run in runs if run.status == "skipped"} == skipped_ids
    assert all(run.blocked_by_id == winner for run in runs if run.status == "skipped")
