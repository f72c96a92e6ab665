"""The system log, and retention of the platform's logs (audit-log-cleanup, purge-logs).

Deletes run in bounded batches, each its own short transaction, so no long lock is held and
a crash leaves whole batches deleted or not. Other apps add their own rows to purge-logs by
connecting to ``purge_logs_requested`` (``jobs`` imports none of them).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import OuterRef, Q, Subquery
from django.dispatch import Signal

from jobs.models import AuditEntry, Job, JobRun, SystemLog

logger = logging.getLogger(__name__)

# Sent by purge-logs. kwargs: now (datetime), days (int, or None for the receiver's own
# retention setting), batch_size (int), dry_run (bool). A receiver deletes (or, dry, counts)
# its own old rows in batches and returns {"label": count, ...}.
purge_logs_requested = Signal()


def system_log(
    *, event: str, message: str, level: str = SystemLog.Level.INFO, job: Job | None = None, data: dict | None = None
) -> SystemLog:
    """Record a job-platform event (and mirror it to the Python log)."""
    logger.log(logging.getLevelName(level.upper()), "%s: %s", event, message)
    return SystemLog.objects.create(event=event[:60], message=message, level=level, job=job, data=data or {})


def batched_delete(queryset: models.QuerySet, *, batch_size: int) -> int:
    """Delete what ``queryset`` selects, ``batch_size`` rows per transaction, oldest ids first."""
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                return deleted
            # Count this model's rows only, not cascaded or SET_NULL'd relatives.
            _, per_model = queryset.model.objects.filter(pk__in=ids).delete()
            deleted += per_model.get(queryset.model._meta.label, 0)
        if len(ids) < batch_size:
            return deleted


def audit_logs_cleanup(*, now: datetime, days: int | None = None, batch_size: int | None = None, dry_run=False) -> dict:
    """Delete audit entries and system log rows older than ``days`` (JOBS_AUDIT_RETENTION_DAYS)."""
    days = settings.JOBS_AUDIT_RETENTION_DAYS if days is None else days
    batch_size = batch_size or settings.JOBS_PURGE_BATCH_SIZE
    cutoff = now - timedelta(days=days)
    audit = AuditEntry.objects.filter(at__lt=cutoff)
    system = SystemLog.objects.filter(at__lt=cutoff)
    if dry_run:
        return {"cutoff": cutoff.isoformat(), "audit_entries": audit.count(), "system_logs": system.count()}
    summary = {
        "cutoff": cutoff.isoformat(),
        "audit_entries": batched_delete(audit, batch_size=batch_size),
        "system_logs": batched_delete(system, batch_size=batch_size),
    }
    system_log(
        event="audit_log_cleanup",
        message=(
            f"Deleted {summary['audit_entries']} audit entries and {summary['system_logs']} system log rows "
            f"older than {days} days."
        ),
        data=summary,
    )
    return summary


def runs_to_purge(*, cutoff: datetime, keep: int) -> models.QuerySet:
    """Finished runs created before ``cutoff`` that are not among their job's ``keep`` newest,
    oldest first: a range of jobs_jobrun_created. A run is past its job's ``keep`` newest when a
    ``keep``-th newer run of that job exists (a subquery with OFFSET keep - 1 reading a few
    entries of jobs_jobrun_job_created), so no per-job query and no job is read whole."""
    old = JobRun.objects.filter(created_at__lt=cutoff).exclude(status__in=JobRun.ACTIVE_STATUSES)
    if keep > 0:
        newer = JobRun.objects.filter(job_id=OuterRef("job_id"), created_at__gte=OuterRef("created_at")).filter(
            Q(created_at__gt=OuterRef("created_at")) | Q(pk__gt=OuterRef("pk"))
        )
        # Ordered like the index, so each lookup reads the job's newest entries and stops.
        kth_newer = newer.order_by("-created_at", "-id").values("pk")[keep - 1 : keep]
        old = old.alias(kth_newer=Subquery(kth_newer)).filter(kth_newer__isnull=False)
    return old.order_by("created_at", "pk")


def runs_purge(*, cutoff: datetime, keep: int, batch_size: int) -> int:
    """Delete ``runs_to_purge`` in batches, oldest first.

    1. Read the next ``batch_size`` ids after the last batch's (created_at, id): the scan resumes
       where it stopped instead of re-reading the kept runs before it.
    2. Delete them by id in a transaction of their own (``id__in``: only those rows are locked,
       so a worker recording runs meanwhile never waits for more than one batch). A run that
       became active in between is left alone.
    """
    deleted, after = 0, None
    while True:
        batch = runs_to_purge(cutoff=cutoff, keep=keep)
        if after is not None:
            batch = batch.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], pk__gt=after[1]))
        rows = list(batch.values_list("created_at", "pk")[:batch_size])
        if not rows:
            return deleted
        with transaction.atomic():
            doomed = JobRun.objects.filter(pk__in=[pk for _, pk in rows]).exclude(status__in=JobRun.ACTIVE_STATUSES)
            # Only the ids are read back: the collector needs them for the SET NULL of retries.
            _, per_model = doomed.only("pk").delete()
        deleted += per_model.get(JobRun._meta.label, 0)
        after = rows[-1]
        if len(rows) < batch_size:
            return deleted


def logs_purge(
    *, now: datetime, days: int | None = None, keep: int | None = None, batch_size: int | None = None, dry_run=False
) -> dict:
    """Delete job runs older than ``days`` (keeping each job's ``keep`` newest), then let other apps
    purge their finished rows (sent/dead notifications, deliveries) through purge_logs_requested."""
    asked_days = days
    days = settings.JOBS_RUN_RETENTION_DAYS if days is None else days
    keep = settings.JOBS_RUNS_KEEP_PER_JOB if keep is None else keep
    batch_size = batch_size or settings.JOBS_PURGE_BATCH_SIZE
    cutoff = now - timedelta(days=days)
    if dry_run:
        runs = runs_to_purge(cutoff=cutoff, keep=keep).count()
    else:
        runs = runs_purge(cutoff=cutoff, keep=keep, batch_size=batch_size)
    summary = {"cutoff": cutoff.isoformat(), "job_runs": runs}
    results = purge_logs_requested.send(sender=JobRun, now=now, days=asked_days, batch_size=batch_size, dry_run=dry_run)
    for _, result in results:
        summary.update(result or {})
    if not dry_run:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(summary.items()) if k != "cutoff")
        system_log(
            event="purge_logs", message=f"Purged old rows (job runs older than {days} days): {counts}.", data=summary
        )
    return summary
