"""Each Celery queue's depth and its oldest waiting run, read from the database rather than the
broker: the run rows are the truth (a message can be lost, re-sent or held by a worker for its
countdown), and the same query answers on Redis and on the embedded filesystem broker.

One aggregate per request over the queued runs (partial index jobs_jobrun_active), grouped by the
queue their job names: its size follows the number of queues, never the number of jobs or runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min, Q
from django.db.models.functions import Coalesce

from jobs.models import JobRun

# Queues shown beyond the configured ones (jobs still naming a queue that was removed).
OTHER_QUEUES_SHOWN = 10


@dataclass(frozen=True)
class QueueDepth:
    name: str
    waiting: int  # queued runs that are due: a worker could take them now
    oldest_since: datetime | None  # since when the oldest of them has been due
    configured: bool  # False: a queue jobs name that is no longer configured (no worker takes it)

    def oldest_age_seconds(self, now: datetime) -> float | None:
        return round((now - self.oldest_since).total_seconds(), 1) if self.oldest_since else None


def queue_depths(now: datetime, configured: list[str]) -> list[QueueDepth]:
    """Every configured queue (the default first, as ``configured`` lists it), then any other queue
    a job with waiting runs names. A run waiting for its ``not_before`` (a retry, a jittered slot)
    is not waiting yet; once due, it has waited since then."""
    default = configured[0]
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    rows = (
        JobRun.objects.filter(due, status=JobRun.Status.QUEUED)
        .values("job__queue")
        .annotate(waiting=Count("pk"), oldest=Min(Coalesce("not_before", "created_at")))
        .order_by()
    )
    found: dict[str, tuple[int, datetime | None]] = {}
    for row in rows:
        name = row["job__queue"] or default
        waiting, oldest = found.get(name, (0, None))
        earliest = min(moment for moment in (oldest, row["oldest"]) if moment is not None)
        found[name] = (waiting + row["waiting"], earliest)
    depths = [QueueDepth(name, *found.pop(name, (0, None)), configured=True) for name in configured]
    others = sorted(found.items(), key=lambda item: -item[1][0])[:OTHER_QUEUES_SHOWN]
    return depths + [QueueDepth(name, waiting, oldest, configured=False) for name, (waiting, oldest) in others]
