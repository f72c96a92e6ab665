"""A job's history: every change to its schedule, handler, config, settings or alert routing is
kept as a version (who, when, from where, what changed), whichever way it came in.

Versions are recorded where every way in passes: a job's ``post_save`` (the admin's and the
dashboard's forms, the API, ``seed_jobs``, a shell), the import's bulk insert
(``jobs.catalog.bulk``), the beat rows' own edits (``jobs.scheduling.schedule_edits``) and the
routing app's route changes (a registered part, below). Each compares the job's state with its
latest version and records a new one only when something versioned differs, so a save that
changes nothing (or only the pause switch, the statistics, the next slot) records nothing.

Who: a web request's user (or API key), set by ``changes_by`` around the request (the middleware
``jobs.permissions.authors``, the API's guard); a command line's ``manage.py <command>``;
otherwise "system".
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import models, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from jobs.models.access import ApiKey
from jobs.models.jobs import Job

# What a version holds, in the order a diff lists it. The schedule is read from the job's beat
# rows; ``webhook_handler`` is the handler's name.
VERSIONED_FIELDS = (
    "cron_expression",
    "timezone",
    "interval_seconds",
    "jitter_seconds",
    "command",
    "webhook_handler",
    "config",
    "queue",
    "description",
    "overlap",
    "max_concurrent",
    "window_action",
    "chain_deadline_seconds",
    "timeout_seconds",
    "max_retries",
    "retry_backoff_seconds",
    "expected_duration_seconds",
    "grace_seconds",
    "catch_up",
    "catch_up_limit",
    "notify_on_failure",
    "escalate_after_failures",
)
CHUNK = 1000


class JobVersion(models.Model):
    """One state of a job's definition, numbered per job from 1 (its first recorded state)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="versions", db_index=False)
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    actor_label = models.CharField(max_length=150, blank=True, help_text="Username, API key, or the process.")
    source = models.CharField(max_length=40, blank=True, help_text="admin, dashboard, api, manage.py import_jobs, ...")
    snapshot = models.JSONField(default=dict, help_text="The versioned fields after this change.")
    changes = models.JSONField(default=dict, help_text="Field: [before, after] against the previous version.")
    restored_from = models.PositiveIntegerField(null=True, blank=True, help_text="The version this one put back.")

    class Meta:
        ordering = ["job", "-number"]
        constraints = [
            # Also the index of a job's versions, newest first (the job page's list).
            models.UniqueConstraint(fields=["job", "number"], name="jobs_jobversion_one_number"),
            models.CheckConstraint(condition=Q(number__gte=1), name="jobs_jobversion_number_positive"),
        ]
        indexes = [
            # ON DELETE SET NULL of a user; most versions are the system's or a few people's.
            models.Index(fields=["actor"], condition=Q(actor__isnull=False), name="jobs_jobversion_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} v{self.number}"


# -- who is changing jobs --------------------------------------------------------------------


@dataclass(frozen=True)
class Author:
    actor: object = None  # a user, an ApiKey, a callable returning one (a request's lazy user), or None
    source: str = ""
    restored_from: int | None = None  # the version a restore puts back

    def resolve(self) -> tuple[object, str, str]:
        """(user or None, label, source)."""
        actor = self.actor() if callable(self.actor) else self.actor
        source = self.source or _process_source()
        user = actor if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) else None
        if user is not None:
            return user, user.get_username(), source
        if isinstance(actor, ApiKey):
            return None, f"API key {actor.name} (#{actor.pk})", source
        return None, "system", source


_author: contextvars.ContextVar[Author | None] = contextvars.ContextVar("jobs_version_author", default=None)


@contextmanager
def changes_by(actor, source: str, *, restored_from: int | None = None):
    """Versions recorded inside this block name ``actor`` (or what it returns) and ``source``."""
    token = _author.set(Author(actor, source, restored_from))
    try:
        yield
    finally:
        _author.reset(token)


def _process_source() -> str:
    if len(sys.argv) > 1 and sys.argv[0].endswith("manage.py"):
        return f"manage.py {sys.argv[1]}"[:40]
    return "system"


# -- parts other apps version (alert routing) ----------------------------------------------


@dataclass(frozen=True)
class VersionedPart:
    read: Callable[[list[int]], dict[int, object]]  # job ids -> the part's value for each
    restore: Callable[[Job, object], None]
    label: str


_parts: dict[str, VersionedPart] = {}


def job_version_part_register(name: str, *, read, restore, label: str) -> None:
    """Version another app's per-job setting too (notifications: a job's alert channels)."""
    _parts[name] = VersionedPart(read=read, restore=restore, label=label)


def versioned_parts() -> dict[str, VersionedPart]:
    return dict(_parts)


def field_label(name: str) -> str:
    if name in _parts:
        return _parts[name].label
    if name in ("cron_expression", "timezone", "interval_seconds"):
        return {"cron_expression": "cron expression", "timezone": "time zone", "interval_seconds": "interval"}[name]
    return Job._meta.get_field(name).verbose_name


# -- recording -------------------------------------------------------------------------------


def job_snapshot(job: Job, parts: dict[str, object] | None = None) -> dict:
    """The versioned state of ``job`` as stored on a version (JSON values)."""
    state = {}
    for name in VERSIONED_FIELDS:
        if name == "webhook_handler":
            state[name] = job.webhook_handler.name if job.webhook_handler_id else None
        else:
            state[name] = getattr(job, name)
    return {**state, **(parts or {})}


def snapshot_changes(before: dict, after: dict) -> dict:
    names = [*VERSIONED_FIELDS, *sorted(set(after) - set(VERSIONED_FIELDS))]
    return {name: [before.get(name), after.get(name)] for name in names if before.get(name) != after.get(name)}


def job_version_record(job: Job) -> JobVersion | None:
    """Record ``job``'s state as its next version if it differs from its latest; None if not."""
    recorded = job_versions_record([job])
    return recorded[0] if recorded else None


@transaction.atomic
def job_versions_record(jobs: list[Job]) -> list[JobVersion]:
    """Record a version of each job whose state differs from its latest version: a few queries per
    thousand jobs (their latest versions, their registered parts, one INSERT). Call inside the
    transaction that changed them: the jobs' rows are locked first, so two changes of one job
    take two numbers in turn."""
    author = _author.get() or Author()
    user, label, source = author.resolve()
    restored_from = author.restored_from
    now = timezone.now()
    recorded = []
    for start in range(0, len(jobs), CHUNK):
        chunk = jobs[start : start + CHUNK]
        ids = [job.pk for job in chunk]
        list(Job.objects.select_for_update().filter(pk__in=ids).values_list("pk", flat=True))
        latest = _latest_versions(ids)
        parts = {name: part.read(ids) for name, part in _parts.items()}
        rows = []
        for job in chunk:
            after = job_snapshot(job, {name: values.get(job.pk) for name, values in parts.items()})
            previous = latest.get(job.pk)
            before = previous.snapshot if previous else {}
            changes = snapshot_changes(before, after)
            if previous is not None and not changes:
                continue
            rows.append(
                JobVersion(
                    job=job,
                    number=(previous.number if previous else 0) + 1,
                    at=now,
                    actor=user,
                    actor_label=label[:150],
                    source=source[:40],
                    snapshot=after,
                    changes=changes if previous else {},
                    restored_from=restored_from,
                )
            )
        recorded += JobVersion.objects.bulk_create(rows)
    return recorded


def _latest_versions(ids: list[int]) -> dict[int, JobVersion]:
    """Each job's newest version: one query on jobs_jobversion_one_number."""
    newest = JobVersion.objects.filter(job_id=OuterRef("job_id")).order_by("-number").values("number")[:1]
    latest = JobVersion.objects.filter(job_id__in=ids, number=Subquery(newest))
    return {version.job_id: version for version in latest}


def job_version_saved(sender, instance: Job, raw: bool = False, **kwargs) -> None:
    """post_save of a job (after its schedule was written): its new version, if any."""
    if not raw:
        job_version_record(instance)
