"""Blackout windows at the moment a slot is booked: which window (if any) holds a job's slot,
and what the job's slot becomes there (``jobs.models.windows.BlackoutWindow``).

The leader loads the windows once per tick (``WindowBook.load``: the yearly ones and the
one-off ones not yet over, a small table) and, for each batch of due jobs, which of those jobs
they name, directly or through an operator group (two indexed queries, none when no window
exists). A slot inside a window becomes, by the job's ``window_action``:

* ``skip``: a skipped run naming the window (``TriggerRequest.skip_reason`` and ``window_name``);
* ``defer``: a queued run of the same slot that waits until the window's end (``not_before``);
  process-jobs' sweep sends it then. Further slots inside the window are recorded skipped
  behind it, naming the window. A window already over at booking time (catch-up after downtime)
  defers to nothing: the slot runs now.

Windows hold slots beat books (on time or caught up); a person's run, a retry or a backfill is
deliberate and runs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from django.db.models import Q

from jobs.models import BlackoutWindow, Job, JobOperatorGroup
from jobs.running.runner import TriggerRequest

# A one-off window matters until its end has passed in every timezone.
ZONES_SPAN = timedelta(days=2)


@dataclass
class WindowBook:
    windows: list[BlackoutWindow] = field(default_factory=list)
    # window ids by group id, for the windows attached to operator groups
    by_group: dict[int, list[int]] = field(default_factory=dict)
    # per batch: window ids that hold each job
    of_job: dict[int, list[int]] = field(default_factory=dict)

    @classmethod
    def load(cls, now: datetime) -> WindowBook:
        """The windows that may hold a slot from ``now`` on (one query, and one for their groups)."""
        current = Q(kind=BlackoutWindow.Kind.YEARLY) | Q(ends_on__gte=(now - ZONES_SPAN).date())
        windows = list(BlackoutWindow.objects.filter(current))
        by_group: dict[int, list[int]] = defaultdict(list)
        if windows:
            links = BlackoutWindow.groups.through.objects.filter(blackoutwindow_id__in=[w.pk for w in windows])
            for window_id, group_id in links.values_list("blackoutwindow_id", "group_id"):
                by_group[group_id].append(window_id)
        return cls(windows=windows, by_group=dict(by_group))

    def attach(self, jobs: list[Job]) -> None:
        """Which of the windows hold each of ``jobs`` (a batch): none loaded, no query."""
        self.of_job = {}
        if not self.windows or not jobs:
            return
        ids = [job.pk for job in jobs]
        of_job: dict[int, list[int]] = defaultdict(list)
        direct = BlackoutWindow.jobs.through.objects.filter(
            job_id__in=ids, blackoutwindow_id__in=[window.pk for window in self.windows]
        )
        for job_id, window_id in direct.values_list("job_id", "blackoutwindow_id"):
            of_job[job_id].append(window_id)
        if self.by_group:
            grouped = JobOperatorGroup.objects.filter(job_id__in=ids, group_id__in=list(self.by_group))
            for job_id, group_id in grouped.values_list("job_id", "group_id"):
                of_job[job_id].extend(self.by_group[group_id])
        self.of_job = dict(of_job)

    def holding(self, job: Job, slot: datetime) -> tuple[BlackoutWindow, datetime] | None:
        """The window that holds ``job``'s ``slot`` (read in the job's timezone) and its end;
        of several, the one that ends last."""
        ids = self.of_job.get(job.pk)
        if not ids:
            return None
        zone = ZoneInfo(job.timezone or "UTC")
        wall = slot.astimezone(zone).replace(tzinfo=None)  # once, however many windows hold the job
        found = [(self._by_id[pk], span[1]) for pk in set(ids) if (span := self._by_id[pk].occurrence(wall))]
        if not found:
            return None
        window, end = max(found, key=lambda pair: pair[1])
        return window, end.replace(tzinfo=zone)

    @cached_property
    def _by_id(self) -> dict[int, BlackoutWindow]:
        return {window.pk: window for window in self.windows}

    def apply(self, requests: list[TriggerRequest], now: datetime) -> list[TriggerRequest]:
        """``requests`` with each slot inside a window skipped or deferred (module docstring)."""
        return [self._held(request, now) for request in requests]

    def _held(self, request: TriggerRequest, now: datetime) -> TriggerRequest:
        if request.scheduled_for is None or request.skip_reason or request.triggered_by != "schedule":
            return request
        held = self.holding(request.job, request.scheduled_for)
        if held is None:
            return request
        window, end = held
        if request.job.window_action == Job.WindowAction.DEFER:
            if end <= now:
                return replace(request, window_name=window.name)
            return replace(request, window_name=window.name, not_before=end, dispatch=False)
        return replace(request, window_name=window.name, skip_reason=f"inside blackout window {window.name!r}")


def _job_book(job: Job, now: datetime) -> WindowBook:
    """The windows that hold one job (one query)."""
    groups = JobOperatorGroup.objects.filter(job=job).values("group_id")
    current = Q(kind=BlackoutWindow.Kind.YEARLY) | Q(ends_on__gte=(now - ZONES_SPAN).date())
    windows = list(BlackoutWindow.objects.filter(current).filter(Q(jobs=job) | Q(groups__in=groups)).distinct())
    return WindowBook(windows=windows, of_job={job.pk: [window.pk for window in windows]})


def window_slots(job: Job, slots: list[datetime], *, now: datetime) -> list[tuple[datetime, str]]:
    """Each of ``job``'s upcoming ``slots`` with the name of the window that holds it ("" when
    none): the job page's next runs. One query."""
    book = _job_book(job, now)
    return [(slot, held[0].name if (held := book.holding(job, slot)) else "") for slot in slots]


def window_holding(job: Job, moment: datetime) -> str:
    """The name of the blackout window ``job`` is inside at ``moment`` ("" for none): the alerts
    stay quiet there (one query)."""
    held = _job_book(job, moment).holding(job, moment)
    return held[0].name if held else ""
