"""Two `manage.py runjob` of one job at the same moment: the database lets exactly one run."""

from __future__ import annotations

import re

import pytest

from tests.process_group import log_text

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.processes,
]


def test_it_runs_one_of_two_simultaneous_runjobs_and_records_the_other_as_skipped(processes, seeded_fixtures):
    from jobs.models import JobRun

    job = seeded_fixtures("test-sleep-job", config={"seconds": 5})

    first = processes.manage("runjob-a", "runjob", "test-sleep-job")
    second = processes.manage("runjob-b", "runjob", "test-sleep-job")
    codes = {"runjob-a": first.wait(timeout=60), "runjob-b": second.wait(timeout=60)}

    assert sorted(codes.values()) == [0, 75], codes
    winner = next(name for name, code in codes.items() if code == 0)
    loser = next(name for name, code in codes.items() if code == 75)

    runs = list(JobRun.objects.filter(job=job).order_by("pk"))
    assert len(runs) == 2, runs
    succeeded = [run for run in runs if run.status == JobRun.Status.SUCCEEDED]
    skipped = [run for run in runs if run.status == JobRun.Status.SKIPPED]
    assert len(succeeded) == 1 and len(skipped) == 1, [(run.pk, run.status) for run in runs]
    ran, refused = succeeded[0], skipped[0]

    assert ran.triggered_by == refused.triggered_by == JobRun.Trigger.CLI
    assert ran.summary == {"slept_seconds": 5}
    assert ran.duration.total_seconds() >= 5
    assert re.fullmatch(rf"run #{ran.pk} is (queued|running)", refused.skip_reason), refused.skip_reason
    assert refused.blocked_by_id == ran.pk
    assert refused.started_at is None and refused.finished_at is not None

    # What each person at a terminal saw.
    assert f"run #{ran.pk} succeeded" in log_text(processes, winner)
    assert f"run #{refused.pk} skipped: run #{ran.pk} is" in log_text(processes, loser)

    job.refresh_from_db()
    assert job.last_run_status == JobRun.Status.SUCCEEDED
    assert job.consecutive_failures == 0
