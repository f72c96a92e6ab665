"""A backfill: the past schedule slots of one job, run one after another, oldest first."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from jobs.models.jobs import Job


class Backfill(models.Model):
    """Slots to run as of, in order; ``position`` is the slot whose run is (or is about to be)
    under way. The ``run_finished`` receiver moves it on when that run has ended for good, so
    no browser need stay open (jobs.running.run_requests)."""

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        STOPPED = "stopped"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="backfills")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    slots = models.JSONField(default=list, help_text="The slots to run as of (ISO datetimes, UTC), oldest first.")
    run_ids = models.JSONField(default=list, help_text="The run of each slot started so far, in slot order.")
    position = models.PositiveIntegerField(default=0, help_text="Index of the slot under way.")
    dry_run = models.BooleanField(
        default=False, help_text="Each slot's run is a dry run: it shows what the slot would write, writing nothing."
    )
    stop_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Two backfills of one job would fight over its one active run.
            models.UniqueConstraint(
                fields=["job"], condition=Q(status="running"), name="jobs_backfill_one_running_per_job"
            ),
        ]

    def __str__(self) -> str:
        return f"backfill #{self.pk} of {self.job.name} ({self.status})"
