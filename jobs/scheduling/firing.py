"""What the leading beat does for Cronhouse's jobs: record every due slot, set-based.

Each job stores the next slot beat owes it (``Job.next_fire_at``, indexed). The leader asks
"which jobs are due?" with one indexed range query, and for a batch of them, in one transaction:

1. renews its lease first (``jobs.scheduling.leader``): a beat that lost leadership records nothing;
2. records a run row for each job's slot (``runner.runs_book``: one INSERT for the batch,
   a recorded skip where another run is still active, nothing where the slot already has its run);
3. moves each job's ``next_fire_at`` / ``late_at`` on.

The slot is recorded and the job moved past it in the same commit, so no instant of a crash
loses a slot or books one twice (the (job, slot) constraint refuses a second row). Messages go
out after the commit. Work grows with what is due, not with how many jobs exist.

A slot more than JOBS_CATCH_UP_TOLERANCE_SECONDS overdue (beat or the database was away) is
recorded as the job's catch-up policy says (``jobs.scheduling.catch_up``).

"Now" is the database's clock (``jobs.scheduling.clock.db_now``), read in the transaction that records the
slots: no slot fires before its time however far this beat's host clock is off.

A slot inside one of the job's blackout windows is recorded skipped, naming the window, or
deferred to its end (``jobs.scheduling.windows``): the windows are read once per tick, and which
jobs they hold once per batch.

A slot of a job that waits on other jobs (a chain) is recorded ``waiting``; the release follows
the commit (``jobs.running.chains``).

A slot on time is recorded even when later ones are also due (a 5-second job on a beat held up
for 12 s records each of its slots, most as skips behind the first).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Min

from jobs.models import Job, JobRun
from jobs.running.chains import chains_release
from jobs.running.runner import TriggerRequest, runs_book, runs_publish
from jobs.scheduling.catch_up import catch_up_requests, catch_up_tolerance
from jobs.scheduling.clock import db_now
from jobs.scheduling.leader import Leadership, fence_transaction
from jobs.scheduling.schedules import SCHEDULE_ROWS
from jobs.scheduling.windows import WindowBook

logger = logging.getLogger(__name__)
FIRE_BATCH = 1000
CatchUp = Job.CatchUp
Trigger = JobRun.Trigger


@dataclass
class FireReport:
    queued: int = 0
    skipped: int = 0
    duplicates: int = 0
    waiting: int = 0  # slots that wait behind a run held up by the broker (policy ``all``)
    chained: int = 0  # slots recorded waiting for the jobs they wait on
    lost_leadership: bool = False
    outgoing: list[JobRun] = field(default_factory=list)  # queued runs, published once all are recorded

    def add(self, outcome: str) -> None:
        if outcome == "queued":
            self.queued += 1
        elif outcome == "skipped":
            self.skipped += 1
        elif outcome == "waiting":
            self.waiting += 1
        elif outcome == "chained":
            self.chained += 1
        else:
            self.duplicates += 1


def due_jobs_fire(
    *, leadership: Leadership | None = None, now: datetime | None = None, batch: int = FIRE_BATCH
) -> FireReport:
    """Record every slot due by ``now`` (the database's clock, read afresh for each batch, when None),
    ``batch`` jobs per transaction (see the module docstring). ``leadership``: this beat's
    lease, renewed first in every transaction (None: no lease, as when every beat fires)."""
    report = FireReport()
    try:
        _record_due(report, leadership, now, batch)
    finally:
        # A burst's messages go out once every slot of it is recorded: a slot's lag is to its
        # commit, and the first batch's messages would hold up the later batches' commits.
        # (Inside a caller's transaction, as in tests, they wait for its commit.)
        if report.outgoing:
            transaction.on_commit(lambda: _publish(report.outgoing, leadership))
        if report.chained:
            # Their upstreams may have succeeded already (a downstream caught up after them).
            transaction.on_commit(lambda: chains_release(now=now or db_now(), deadlines=False))
    return report


def _publish(runs: list[JobRun], leadership: Leadership | None) -> None:
    """Publish a burst a batch at a time, renewing the lease between batches: a leader busy
    sending a large burst is making progress and keeps leading."""
    for start in range(0, len(runs), FIRE_BATCH):
        runs_publish(runs[start : start + FIRE_BATCH])
        if leadership is not None:
            leadership.renew(db_now())


def _record_due(report: FireReport, leadership: Leadership | None, pinned: datetime | None, batch: int) -> None:
    windows: WindowBook | None = None  # read once per tick, when something is due
    while True:
        with transaction.atomic():
            fence_transaction()
            now = pinned or db_now()
            if leadership is not None and not leadership.renew(now):
                report.lost_leadership = True
                return
            due = Job.objects.select_for_update(skip_locked=True).due(now)
            # The schedules (the jobs' tasks' crontab / interval rows) in three queries a batch;
            # prefetched rather than joined, so no crontab row that many jobs share gets locked.
            jobs = list(due.order_by("next_fire_at", "pk").prefetch_related(*SCHEDULE_ROWS)[:batch])
            if jobs and windows is None:
                windows = WindowBook.load(now)
            queued = _fire(jobs, now, report, windows) if jobs else []
        report.outgoing += queued  # committed
        if len(jobs) < batch:
            return


def next_due_at() -> datetime | None:
    """The earliest slot any enabled job is owed (jobs_job_due)."""
    return Job.objects.filter(enabled=True).aggregate(first=Min("next_fire_at"))["first"]


def _fire(jobs: list[Job], now: datetime, report: FireReport, windows: WindowBook | None = None) -> list[JobRun]:
    tolerance = catch_up_tolerance()
    windows = windows or WindowBook.load(now)
    windows.attach(jobs)
    requests = []
    for job in jobs:
        slot = job.next_fire_at
        overdue = now - slot > tolerance
        job.schedule_reset(now if overdue else slot)  # the slot it is owed next
        if job.next_fire_at is None:
            # Its expression never fires (stored by a restore or raw SQL; forms refuse it): it
            # is owed nothing, and every other job goes on.
            logger.warning("beat: schedule of job=%s (%r) never fires; nothing booked", job.name, job.cron_expression)
        elif overdue:
            requests.extend(catch_up_requests(job, slot, now))
        else:
            requests.append(TriggerRequest(job, Trigger.SCHEDULE, scheduled_for=slot))
    results = runs_book(windows.apply(requests, now), now=now, publish=False)
    for result in results:
        report.add(result.outcome)
    _next_slots_save(jobs)
    return [result.run for result in results if result.queued]


def _next_slots_save(jobs: list[Job]) -> None:
    """Each job's new next slot: one UPDATE per distinct (next_fire_at, late_at), as a burst's
    jobs mostly share their next slot (every minute, every 5 minutes, on the hour)."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for job in jobs:
        groups[(job.next_fire_at, job.late_at)].append(job.pk)
    for (next_fire_at, late_at), ids in groups.items():
        Job.objects.filter(pk__in=ids).update(next_fire_at=next_fire_at, late_at=late_at)
