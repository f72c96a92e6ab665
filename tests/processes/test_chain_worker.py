"""A chain on a real worker: the waiting run is released by its upstream's end in the worker's
process and runs after it, with no sweep involved."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.process_group import wait_for

from .helpers import fresh

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.processes,
]


def test_it_runs_a_waiting_run_on_the_worker_once_its_upstream_has_succeeded(seeded_fixtures, start_worker):
    from jobs.models import JobDependency, JobRun
    from jobs.running.runner import TriggerRequest, runs_book

    upstream = seeded_fixtures("test-sleep-job", config={"seconds": 1})
    downstream = seeded_fixtures("test-job")  # every 15 minutes
    JobDependency.objects.create(job=downstream, upstream=upstream)
    start_worker()

    slot = datetime(2026, 3, 2, 12, 15, tzinfo=UTC)
    [waiting] = runs_book([TriggerRequest(downstream, JobRun.Trigger.SCHEDULE, scheduled_for=slot)])
    assert waiting.outcome == "chained" and fresh(waiting.run).status == JobRun.Status.WAITING
    # The upstream's slot lies in the downstream's period (12:00, 12:15].
    [first] = runs_book([TriggerRequest(upstream, JobRun.Trigger.SCHEDULE, scheduled_for=slot.replace(minute=10))])

    def both_ended():
        runs = [fresh(first.run), fresh(waiting.run)]
        return runs if all(run.finished_at and not run.is_active for run in runs) else None

    ran_first, ran_after = wait_for(both_ended, timeout=40, message="the upstream and then the chained run")
    assert (ran_first.status, ran_after.status) == (JobRun.Status.SUCCEEDED, JobRun.Status.SUCCEEDED)
    assert ran_after.started_at >= ran_first.finished_at
