"""Scenario 5: 200 concurrent API triggers of one job, through a real gunicorn (32 threads in 4
processes, each with its own PostgreSQL connection): exactly one run becomes active and each
of the other 199 triggers is a recorded skip naming it. Nothing is lost, nothing doubles."""

from __future__ import annotations

from collections import Counter

import pytest

from .conftest import API_KEY
from .helpers import api_triggers_at_once

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.processes,
]
TRIGGERS = 200


def test_it_turns_200_concurrent_triggers_into_one_run_and_199_recorded_skips(web_server, make_job):
    from jobs.models import JobRun

    job = make_job("contended", cron_expression="0 0 1 1 *")
    answers = api_triggers_at_once(web_server, job.name, API_KEY, TRIGGERS)

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
