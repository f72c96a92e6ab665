"""Two beat processes on one PostgreSQL: every schedule slot makes exactly one run.

One test, two phases:

1. two beats with the leader lease disabled: both record due slots of five interval jobs
   (epoch-aligned 5 s slots, so every 5 s is a burst both beats race for), and the row locks and
   the (job, slot, attempt) constraint make one run per slot;
2. two beats with the lease: only the leader fires, the other stands by, through a minute
   boundary with ten every-minute jobs; a cron edit made 10 s before that minute reaches the
   running leader in time for it.
(A leader that dies or hangs, and the standby taking over: test_beat_failover.py.)

A worker runs throughout, so every run executes. Phase 1 needs no minute boundary, so the
test waits for one only.
"""

from __future__ import annotations

import re
import signal
from collections import Counter
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from tests.process_group import log_text, wait_for, wait_for_log

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.processes,
]

INTERVAL = 5
UNLOCKED = {"JOBS_BEAT_LEADER_LEASE": "false"}


def _minute_after(moment: datetime, *, at_least: float) -> datetime:
    """The first whole minute at least ``at_least`` seconds after ``moment``."""
    earliest = moment + timedelta(seconds=at_least)
    boundary = earliest.replace(second=0, microsecond=0)
    return boundary if boundary == earliest else boundary + timedelta(minutes=1)


def _wait_until(moment: datetime, message: str) -> None:
    wait_for(
        lambda: timezone.now() >= moment,
        timeout=max((moment - timezone.now()).total_seconds(), 0) + 5,
        interval=0.1,
        message=message,
    )


def _scheduled_runs(job, start=None, end=None):
    from jobs.models import JobRun

    runs = JobRun.objects.filter(job=job, triggered_by=JobRun.Trigger.SCHEDULE)
    if start is not None:
        runs = runs.filter(scheduled_for__gte=start)
    if end is not None:
        runs = runs.filter(scheduled_for__lt=end)
    return list(runs.order_by("scheduled_for"))


def _wait_for_slot_run(job, slot: datetime, timeout: float):
    from jobs.models import JobRun

    return wait_for(
        lambda: JobRun.objects.filter(job=job, scheduled_for=slot).first(),
        timeout=timeout,
        message=f"a run of {job.name} for {slot:%H:%M:%S}",
    )


def _queued_slots(text: str, job_name: str) -> list[str]:
    return re.findall(rf"run queued job={job_name} run=\d+ trigger=schedule slot=(.+)", text)


def _assert_one_run_per_slot(job):
    counts = Counter((run.scheduled_for, run.attempt) for run in _scheduled_runs(job))
    assert counts and max(counts.values()) == 1, [key for key, n in counts.items() if n > 1]


def _assert_interval_slots(job, start: datetime, end: datetime) -> None:
    """Every run of the window sits on its own 5 s slot, and (nearly) every slot has one."""
    runs = _scheduled_runs(job, start, end)
    slots = [run.scheduled_for for run in runs]
    assert len(slots) == len(set(slots)), slots
    assert all(slot.timestamp() % INTERVAL == 0 for slot in slots), slots
    expected = (end - start).total_seconds() / INTERVAL
    assert len(slots) >= expected - 1.5, f"{len(slots)} slots fired in a window of {expected:.1f}"


def _assert_clean(text: str, name: str) -> None:
    assert "Traceback" not in text and " ERROR " not in text, f"{name} logged an error:\n{text[-3000:]}"


def test_it_fires_every_slot_exactly_once_with_two_beats_with_and_without_the_lease(processes, make_job, start_worker):
    from jobs.models import JobRun

    every_5s = [make_job(f"every-5s-{n}", interval_seconds=INTERVAL) for n in range(1, 6)]
    every_minute = make_job("every-minute", cron_expression="* * * * *")
    edited_cron = make_job("edited-cron", cron_expression="0 0 1 1 *")  # New Year only, until edited
    # Nine more every-minute jobs (ten in all): each slot once for each.
    more_every_minute = [make_job(f"every-minute-{n:02d}", cron_expression="* * * * *") for n in range(2, 11)]
    start_worker()

    # -- 1. two beats without the lease: the slot constraint alone dedupes ------------------
    free_1 = processes.beat("beat-free-1", **UNLOCKED)
    free_2 = processes.beat("beat-free-2", **UNLOCKED)
    wait_for_log(processes, "beat-free-1", "beat: Starting...", timeout=20)
    wait_for_log(processes, "beat-free-2", "beat: Starting...", timeout=20)
    unlocked_from = timezone.now() + timedelta(seconds=INTERVAL)  # from the first interval tick on
    _wait_until(unlocked_from + timedelta(seconds=4 * INTERVAL), "four interval slots")
    processes.kill(free_1, signal.SIGTERM)
    processes.kill(free_2, signal.SIGTERM)
    unlocked_to = timezone.now()

    free_logs = [log_text(processes, "beat-free-1"), log_text(processes, "beat-free-2")]
    for name, text in zip(("beat-free-1", "beat-free-2"), free_logs, strict=True):
        _assert_clean(text, name)
        assert "leader lease" not in text
    for job in every_5s:
        # Both beats were due to record every slot; each was queued once.
        queued = Counter(_queued_slots("".join(free_logs), job.name))
        assert queued and max(queued.values()) == 1, (job.name, queued)
        _assert_interval_slots(job, unlocked_from, unlocked_to - timedelta(seconds=1))

    # -- 2. two beats with the lease: one leads, one stands by -------------------------------
    leader = processes.beat("beat-1")
    wait_for_log(processes, "beat-1", "took the leader lease", timeout=20)
    locked_from = timezone.now() + timedelta(seconds=INTERVAL)
    standby = processes.beat("beat-2")
    wait_for_log(processes, "beat-2", "beat: Starting...", timeout=20)
    minute = _minute_after(timezone.now(), at_least=12)
    # An admin edits a cron 10 s before a minute: the running leader fires it at that minute.
    _wait_until(minute - timedelta(seconds=10), "10 s before the minute boundary")
    edited_cron.cron_expression = "* * * * *"
    edited_cron.save()
    _wait_until(minute + timedelta(seconds=3), "the minute boundary")
    _wait_for_slot_run(every_minute, minute, timeout=10)
    _wait_for_slot_run(edited_cron, minute, timeout=10)

    standby_text = log_text(processes, "beat-2")
    assert "took the leader lease" not in standby_text
    assert "Sending due task" not in standby_text, standby_text  # a hot standby fires nothing
    assert _queued_slots(log_text(processes, "beat-1"), "every-minute").count(str(minute)) == 1

    locked_to = timezone.now()
    _assert_clean(log_text(processes, "beat-1"), "beat-1")
    _assert_clean(standby_text, "beat-2")
    assert standby.poll() is None and leader.poll() is None

    # -- what a user sees in the run history ----------------------------------------------------
    for job in (every_minute, *more_every_minute):
        _wait_for_slot_run(job, minute, timeout=10)
        runs = _scheduled_runs(job, minute, minute + timedelta(minutes=1))
        assert [(run.scheduled_for, run.attempt) for run in runs] == [(minute, 1)], job.name
    for job in (every_minute, *every_5s, edited_cron, *more_every_minute):
        _assert_one_run_per_slot(job)
    assert all(run.scheduled_for.second == 0 for run in _scheduled_runs(every_minute))
    assert [run.scheduled_for for run in _scheduled_runs(edited_cron)] == [minute]
    for job in every_5s:
        _assert_interval_slots(job, locked_from, locked_to - timedelta(seconds=1))

    # The worker ran everything the beats queued.
    wait_for(
        lambda: not JobRun.objects.filter(status__in=JobRun.ACTIVE_STATUSES).exists(),
        timeout=15,
        message="every queued run to finish",
    )
    statuses = set(JobRun.objects.values_list("status", flat=True))
    assert statuses <= {JobRun.Status.SUCCEEDED, JobRun.Status.SKIPPED}, statuses
