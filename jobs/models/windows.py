"""Blackout windows (named ranges during which a job's slots are not run) and chains (a job
that waits, for each slot, on other jobs' runs of the same period). docs/operations.md,
"Windows" and "Chains"."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from jobs.models.jobs import Job

# A yearly window's dates are stored in this (leap) year so that Feb 29 is a date; its year means nothing.
YEARLY_YEAR = 2000


class BlackoutWindow(models.Model):
    """A named range of wall-clock time, read in each job's own timezone, during which the
    job's slots are skipped (or deferred to the window's end, as the job says). One-off
    windows are date-times; yearly ones repeat every year on the same dates ("Dec 25").

    The end is exclusive: Christmas day is Dec 25 00:00 to Dec 26 00:00. A yearly window whose
    end comes before its start runs into the next year (Dec 31 18:00 to Jan 1 06:00)."""

    class Kind(models.TextChoices):
        ONCE = "once", "One-off"
        YEARLY = "yearly", "Every year"

    name = models.CharField(max_length=100, unique=True, help_text="Recorded on every slot it skips.")
    kind = models.CharField(max_length=6, choices=Kind.choices, default=Kind.ONCE)
    starts_on = models.DateField(help_text="First day (for a yearly window the year is ignored).")
    starts_at = models.TimeField(default=time(0), help_text="Wall-clock time in each job's timezone.")
    ends_on = models.DateField(help_text="Day of the end (for a yearly window the year is ignored).")
    ends_at = models.TimeField(default=time(0), help_text="Exclusive: Dec 26 00:00 ends a window on Dec 25.")
    reason = models.CharField(max_length=200, blank=True, help_text="Why, for whoever reads the job page.")
    jobs = models.ManyToManyField(
        Job, blank=True, related_name="blackout_windows", help_text="Jobs whose slots this window holds."
    )
    groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="+",
        help_text="Also every job limited to one of these operator groups.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "blackout window"
        ordering = ["name"]
        constraints = [
            # A one-off window ends after it starts; a yearly one is never empty (equal ends).
            models.CheckConstraint(
                condition=(
                    Q(kind="once")
                    & (Q(ends_on__gt=F("starts_on")) | Q(ends_on=F("starts_on"), ends_at__gt=F("starts_at")))
                )
                | (Q(kind="yearly") & ~Q(ends_on=F("starts_on"), ends_at=F("starts_at"))),
                name="jobs_blackoutwindow_not_empty",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.kind == self.Kind.YEARLY:
            self.starts_on = self.starts_on and self.starts_on.replace(year=YEARLY_YEAR)
            self.ends_on = self.ends_on and self.ends_on.replace(year=YEARLY_YEAR)
        if self.starts_on and self.ends_on:
            start, end = self._start_wall(), self._end_wall()
            if self.kind == self.Kind.ONCE and end <= start:
                raise ValidationError({"ends_on": "The window must end after it starts."})
            if self.kind == self.Kind.YEARLY and end == start:
                raise ValidationError({"ends_on": "The window must not end where it starts."})

    def _start_wall(self, year: int | None = None) -> datetime:
        return datetime.combine(_on_year(self.starts_on, year), self.starts_at)

    def _end_wall(self, year: int | None = None) -> datetime:
        return datetime.combine(_on_year(self.ends_on, year), self.ends_at)

    def occurrence(self, wall: datetime) -> tuple[datetime, datetime] | None:
        """The (start, end) wall-clock range of this window that holds the naive wall-clock
        time ``wall``, or None."""
        if self.kind == self.Kind.ONCE:
            start, end = self._start_wall(), self._end_wall()
            return (start, end) if start <= wall < end else None
        for year in (wall.year - 1, wall.year):
            start, end = self._start_wall(year), self._end_wall(year)
            if end <= start:
                end = self._end_wall(year + 1)
            if start <= wall < end:
                return start, end
        return None

    def holds(self, slot: datetime, timezone: str) -> datetime | None:
        """The end (an aware datetime) of this window's occurrence that holds ``slot`` read in
        ``timezone``; None when the slot is outside. Wall clocks compare, so a window keeps its
        local hours across daylight-saving changes; an end that falls in a spring-forward gap
        is read with the offset before the change."""
        zone = ZoneInfo(timezone or "UTC")
        found = self.occurrence(slot.astimezone(zone).replace(tzinfo=None))
        return found[1].replace(tzinfo=zone) if found else None


def _on_year(day: date, year: int | None) -> date:
    if year is None:
        return day
    try:
        return day.replace(year=year)
    except ValueError:  # Feb 29 in a common year: the window holds Feb 28 instead
        return day.replace(year=year, day=28)


class JobDependency(models.Model):
    """``job`` waits, for each slot, until ``upstream`` has succeeded for the same period
    (jobs.running.chains)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="dependencies")
    upstream = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="dependents")

    class Meta:
        verbose_name = "waits for"
        verbose_name_plural = "waits for (chain)"
        constraints = [
            models.UniqueConstraint(fields=["job", "upstream"], name="jobs_jobdependency_unique"),
            models.CheckConstraint(condition=~Q(job=F("upstream")), name="jobs_jobdependency_not_itself"),
        ]
        indexes = [
            # "Which jobs wait on this one?" when one of its runs ends (and ON DELETE CASCADE).
            models.Index(fields=["upstream", "job"], name="jobs_jobdependency_upstream"),
        ]

    def __str__(self) -> str:
        return f"{self.job} waits for {self.upstream}"

    def clean(self) -> None:
        """Refuse a circle (A waits for B, which waits for A): both would wait until their deadline."""
        if not (self.job_id and self.upstream_id):
            return
        seen, frontier = set(), {self.upstream_id}
        while frontier:
            if self.job_id in frontier:
                raise ValidationError({"upstream": "That job already waits, directly or not, for this one."})
            seen |= frontier
            frontier = (
                set(JobDependency.objects.filter(job_id__in=frontier).values_list("upstream_id", flat=True)) - seen
            )
