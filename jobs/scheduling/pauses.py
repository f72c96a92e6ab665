"""Pause and resume a job, with a reason and an optional end.

A paused job (``Job.enabled`` false; every page says "paused") has no next slot: beat records
none, so it is never late and sends no late alert; a person may still run it by hand. Who paused
it, when, why and until when are kept on the job row and shown on the dashboard.

Every way in (the dashboard, the job page, the admin's actions, the schedule page) pauses and
resumes through ``job_pause`` / ``job_resume``; the admin's actions and the schedule page give no
reason. Each change is one conditional UPDATE (``enabled`` as it was read), so two people pausing and
resuming at once leave one outcome, and an end passed while someone was pausing again does not
resume the new pause. The leading beat ends pauses whose time has come (``pauses_end``, called
from its housekeeping every JOBS_BEAT_HEARTBEAT_SECONDS): beat is what a pause holds back, so
nothing needs resuming while no beat runs. Pause and resume go through ``jobs.permissions.access``
(``toggle``) and are audited, refusals included; the automatic end is audited as the system's.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from jobs.models import AuditEntry, Job
from jobs.permissions import access
from jobs.permissions.audit import audit_record
from jobs.scheduling.schedules import SCHEDULE_ROWS

REASON_MAX_LENGTH = 200
# Pauses ended per housekeeping pass; more wait for the next pass, seconds later.
PAUSES_ENDED_PER_PASS = 500


class PauseRefused(Exception):
    """The pause or resume was not done; the message says why, for the page."""

    def __init__(self, message: str, *, forbidden: bool = False):
        super().__init__(message)
        self.forbidden = forbidden


def _allowed(who, job: Job, action: str, address: str) -> None:
    if access.job_allows(who, access.TOGGLE, job):
        return
    reason = access.refusal_reason(who, access.TOGGLE)
    audit_record(actor=who, action=action, instance=job, address=address, refused=reason)
    raise PauseRefused(f"{job.name}: not allowed ({reason})", forbidden=True)


def _tasks_follow(job_id: int, enabled: bool) -> None:
    """The job's beat row says the same (django-celery-beat's admin shows it), and beat notices."""
    if PeriodicTask.objects.filter(job__pk=job_id).exclude(enabled=enabled).update(enabled=enabled):
        PeriodicTasks.update_changed()


def job_pause(
    *, job: Job, who, reason: str, until: datetime | None = None, address: str = "", now: datetime | None = None
) -> bool:
    """Pause ``job`` (or change the reason and end of its pause) on behalf of ``who``. Returns
    False when nothing changed (the same pause). Raises PauseRefused: not allowed (audited), an
    end that has passed, a reason too long."""
    now = now or timezone.now()
    _allowed(who, job, AuditEntry.Action.DISABLE, address)
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX_LENGTH:
        raise PauseRefused(f"The reason may be at most {REASON_MAX_LENGTH} characters.")
    if until is not None and until <= now:
        raise PauseRefused("The end of the pause must be in the future.")
    user = who if isinstance(who, get_user_model()) else None
    with transaction.atomic():
        paused = Job.objects.filter(pk=job.pk, enabled=True).update(
            enabled=False,
            paused_at=now,
            paused_by=user,
            paused_reason=reason,
            paused_until=until,
            next_fire_at=None,
            late_at=None,
            # A late episode ends quietly: a paused job owes nothing, and no recovery is announced.
            late_since=None,
            schedule_changed_at=now,
        )
        if not paused:
            current = Job.objects.filter(pk=job.pk, enabled=False).values("paused_reason", "paused_until").first()
            if current is None or (current["paused_reason"], current["paused_until"]) == (reason, until):
                return False
            Job.objects.filter(pk=job.pk, enabled=False).update(paused_reason=reason, paused_until=until)
        _tasks_follow(job.pk, enabled=False)
        changes = {"paused": [not paused, True], "reason": [None, reason], "until": [None, _iso(until)]}
        audit_record(actor=who, action=AuditEntry.Action.DISABLE, instance=job, address=address, changes=changes)
    job.refresh_from_db()
    return True


def job_resume(*, job: Job, who, address: str = "", now: datetime | None = None) -> bool:
    """Resume ``job`` on behalf of ``who``: it owes only the slots after now. False if it was not
    paused. Raises PauseRefused when ``who`` may not (audited)."""
    _allowed(who, job, AuditEntry.Action.ENABLE, address)
    resumed = _resume(job_id=job.pk, now=now or timezone.now(), actor=who, address=address)
    job.refresh_from_db()
    return resumed


def _resume(*, job_id: int, now: datetime, actor, address: str = "", until: datetime | None = None) -> bool:
    """The conditional UPDATE of a resume: only a paused job (and, for a pause's end, only the
    pause that ends at ``until``), with its next slot after ``now``."""
    with transaction.atomic():
        job = Job.objects.select_related(*SCHEDULE_ROWS).filter(pk=job_id, enabled=False).first()
        if job is None or (until is not None and job.paused_until != until):
            return False
        before = {"reason": job.paused_reason, "until": _iso(job.paused_until)}
        job.enabled = True
        job.schedule_reset(now)
        paused = Job.objects.filter(pk=job_id, enabled=False)
        if until is not None:
            paused = paused.filter(paused_until=until)
        resumed = paused.update(
            enabled=True,
            next_fire_at=job.next_fire_at,
            late_at=job.late_at,
            schedule_changed_at=now,
            **Job.NOT_PAUSED,
        )
        if not resumed:
            return False
        _tasks_follow(job_id, enabled=True)
        changes = {"paused": [True, False], "reason": [before["reason"], None], "until": [before["until"], None]}
        audit_record(actor=actor, action=AuditEntry.Action.ENABLE, instance=job, address=address, changes=changes)
    return True


def pauses_end(*, now: datetime) -> int:
    """Resume the paused jobs whose end has come (the partial index jobs_job_pause_ends); returns
    how many. Called by the leading beat's housekeeping."""
    ending = Job.objects.filter(paused_until__lte=now).values_list("pk", "paused_until")[:PAUSES_ENDED_PER_PASS]
    return sum(_resume(job_id=pk, now=now, actor=None, until=until) for pk, until in ending)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
