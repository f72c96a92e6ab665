"""Real beats whose host clocks are off, and a broker that goes away across minute boundaries.

1. Beats run under libfaketime (Debian's ``faketime``: ``LD_PRELOAD`` + ``FAKETIME``) 20 s
   ahead and 20 s behind; PostgreSQL and the worker keep the real clock. With the default limit
   the +20 s beat refuses to lead and says so; allowed to lead, each fires every slot on time by
   the database's clock (the worker, on the real clock, starts none early or late), and its
   offset shows on /health/ and in its log.
2. Twenty every-minute jobs while this test's own redis-server (never the shared one) is stopped
   across two minute boundaries: no slot is lost to "run #N is queued". The first slot's runs,
   never sent, are superseded by the second's (policy latest), and those go out within seconds of
   Redis answering again and succeed.
"""

from __future__ import annotations

import glob
import re
import shutil
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from tests.process_group import log_text, wait_for, wait_for_log
from tests.services import service_missing

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.processes,
]

INTERVAL = 5


def faked_clock(seconds: int) -> dict[str, str]:
    """Environment that runs a process with its clock ``seconds`` off (libfaketime)."""
    library = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None)
    if library is None or shutil.which("faketime") is None:
        service_missing("faketime (Debian package; bin/test installs it)")
    return {"LD_PRELOAD": library, "FAKETIME": f"{seconds:+d}s"}


def _wait_until(moment: datetime, message: str) -> None:
    wait_for(
        lambda: timezone.now() >= moment,
        timeout=max((moment - timezone.now()).total_seconds(), 0) + 5,
        interval=0.1,
        message=message,
    )


def _logged_offsets(text: str) -> list[float]:
    return [float(value) for value in re.findall(r"clock offset ([+-]\d+\.\d) s from the database", text)]


def test_it_fires_on_the_databases_clock_from_beats_20_s_ahead_and_behind(processes, make_job, start_worker, client):
    from jobs.models import JobRun, LeaderLease

    jobs = [make_job(f"every-5s-{n}", interval_seconds=INTERVAL) for n in (1, 2)]
    start_worker()

    # -- the default limit (10 s): a beat 20 s ahead stands by and says why -------------------
    refused = processes.beat("beat-ahead-refused", **faked_clock(20))
    wait_for_log(processes, "beat-ahead-refused", "refusing to lead", timeout=30)
    _wait_until(timezone.now() + timedelta(seconds=INTERVAL + 1), "an interval slot")
    assert not JobRun.objects.exists()
    assert not LeaderLease.objects.filter(holder__gt="").exists()
    # SIGKILL: what is tested here is firing, not a clean stop (a process under libfaketime
    # does not always finish its SIGTERM shutdown within the group's 30 s).
    processes.kill(refused)

    # -- allowed to lead, 20 s ahead and then 20 s behind: every slot on time -----------------
    for skew in (20, -20):
        name = f"beat{skew:+d}"
        beat = processes.beat(name, JOBS_CLOCK_SKEW_MAX_SECONDS="60", **faked_clock(skew))
        wait_for_log(processes, name, "took the leader lease", timeout=30)
        since = timezone.now()
        _wait_until(since + timedelta(seconds=3 * INTERVAL + 1), "three interval slots")
        beat_health = client.get("/health/").json()["checks"]["beat"]
        processes.kill(beat)  # the next beat takes the lease once it expires

        assert beat_health["clock_offset_seconds"] == pytest.approx(skew, abs=1.5), beat_health
        assert beat_health["age_seconds"] >= 0
        offsets = _logged_offsets(log_text(processes, name))
        assert offsets and offsets[0] == pytest.approx(skew, abs=1.5), offsets
        runs = JobRun.objects.filter(job__in=jobs, scheduled_for__gte=since, started_at__isnull=False)
        assert runs.count() >= 4, skew  # two jobs, at least two slots each
        for run in runs:
            # started_at is the worker's clock (the real one): never before the slot, nor late.
            assert run.scheduled_for <= run.started_at < run.scheduled_for + timedelta(seconds=3), (skew, run)


# --- the broker's return ------------------------------------------------------------------------


def _minute_after(moment: datetime, *, at_least: float) -> datetime:
    earliest = moment + timedelta(seconds=at_least)
    boundary = earliest.replace(second=0, microsecond=0)
    return boundary if boundary == earliest else boundary + timedelta(minutes=1)


def test_it_loses_no_slot_of_20_every_minute_jobs_to_a_broker_outage_across_two_minutes(
    processes, make_job, private_redis
):
    from jobs.models import JobRun

    Status = JobRun.Status
    jobs = [make_job(f"minutely-{n:02d}", cron_expression="* * * * *") for n in range(1, 21)]
    broker = {"CELERY_BROKER_URL": private_redis.url}
    processes.worker("worker", **broker)
    wait_for_log(processes, "worker", " ready.", timeout=60)
    processes.beat("beat", **broker)
    wait_for_log(processes, "beat", "took the leader lease", timeout=30)

    first = _minute_after(timezone.now(), at_least=10)
    second = first + timedelta(minutes=1)
    _wait_until(first - timedelta(seconds=4), "4 s before a minute boundary")
    private_redis.stop()
    _wait_until(second + timedelta(seconds=5), "5 s after the next minute boundary")
    private_redis.start()
    back_at = timezone.now()

    def second_slot_done() -> bool:
        done = JobRun.objects.filter(job__in=jobs, scheduled_for=second, status=Status.SUCCEEDED)
        return done.count() == len(jobs)

    wait_for(second_slot_done, timeout=90, interval=0.5, message="every job's second slot to succeed")
    for job in jobs:
        older = JobRun.objects.get(job=job, scheduled_for=first)
        assert older.status == Status.SKIPPED and older.skip_reason.startswith("superseded by slot"), older
        newer = JobRun.objects.get(job=job, scheduled_for=second)
        # Sent within seconds of Redis answering (the leader's sweep backs off 1, 2, 4, 5 s).
        assert newer.dispatched_at - back_at < timedelta(seconds=8), (job.name, newer.dispatched_at, back_at)
    assert not JobRun.objects.filter(job__in=jobs, skip_reason__contains="is queued").exists()
    assert "Traceback" not in log_text(processes, "beat")
