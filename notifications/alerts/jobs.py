"""Alerts to staff about failing jobs: failure, escalation, recovery — each once per streak.

A job routed to alert channels (``routing.py``) tells those; an unrouted job e-mails the
default recipients.

``jobs`` announces every finished run (``jobs.signals.run_finished``, after commit); this
module listens. The job's ``alert_state`` records what staff were last told:

    ok --final failure (the Nth in a row, or the Mth within the window: the job's
         AlertThreshold, else the settings)--> failing (failure e-mail)
    failing --Nth consecutive final failure--> escalated (escalation e-mail, once)
    failing / escalated --success, fewer than M failures left in the window--> ok (recovery e-mail)

A paused job (``enabled`` off) opens no incident: a run that was still going when it was paused
ends without an alert.

A failure with a retry still to come (``final=False``) is not reported: the retry may pass.
Nor is a failure while the job is inside one of its blackout windows (a maintenance).
Each transition is a conditional UPDATE, and the e-mails are enqueued in the same
transaction with a dedupe key per (kind, run, recipient), so a repeated signal sends nothing twice.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.formatting import one_line
from core.redaction import redact
from jobs.models import Job, JobRun
from jobs.operations.health import alert_recipients
from jobs.operations.logs import system_log
from jobs.scheduling.windows import window_holding
from notifications.alerts.operations import on_run_slow
from notifications.channels.delivery import alert_deliveries_record
from notifications.channels.messages import Alert
from notifications.channels.routing import alert_channels_for
from notifications.models.channels import failure_thresholds
from notifications.services import notifications_enqueue_many

logger = logging.getLogger(__name__)
AlertState = Job.AlertState
ERROR_EXCERPT = 4000
TEMPLATES = {
    "failed": "job_alerts/failed",
    "escalated": "job_alerts/escalated",
    "recovered": "job_alerts/recovered",
}


def on_run_finished(sender, run: JobRun, final: bool, **kwargs) -> None:
    """Signal receiver. A problem here is logged, never raised into the runner."""
    if getattr(run, "slow", False):
        on_run_slow(sender, run=run)  # once per run: process-jobs may have sent it already
    if run.status == JobRun.Status.SUCCEEDED and getattr(run.job, "alert_state", None) == AlertState.OK:
        # The common case needs no transaction: nothing to tell, nothing to change. The
        # runner read alert_state as it ended the run (PostgreSQL) or as it claimed it.
        return
    try:
        if run.status == JobRun.Status.SUCCEEDED and not _told_about_failure(run.job_id):
            return  # the common case: one indexed read, no transaction, no lock
        job_alerts_for_run(run_id=run.pk, final=final)
    except Exception:
        logger.exception("job alert for run %s failed", run.pk)


def _told_about_failure(job_id: int) -> bool:
    return Job.objects.filter(pk=job_id).exclude(alert_state=AlertState.OK).exists()


def _alert_kind(job: Job, run: JobRun, final: bool) -> tuple[str | None, str]:
    """(e-mail kind or None, the alert state the job moves to)."""
    if run.status == JobRun.Status.SUCCEEDED:
        if job.alert_state == AlertState.OK:
            return None, AlertState.OK
        if _window_reached(job, run):
            return None, job.alert_state  # a pass between failures: still failing too often
        return "recovered", AlertState.OK
    if run.status not in JobRun.FAILURE_STATUSES or not final or not job.notify_on_failure:
        return None, job.alert_state
    if not job.enabled:
        return None, job.alert_state  # paused: nothing to tell until it is resumed
    if job.alert_state == AlertState.OK and not _threshold_reached(job, run):
        return None, job.alert_state  # below the job's thresholds: not yet an incident
    if job.consecutive_failures >= job.escalate_after_failures:
        return ("escalated" if job.alert_state != AlertState.ESCALATED else None), AlertState.ESCALATED
    if job.alert_state == AlertState.OK:
        return "failed", AlertState.FAILING
    return None, job.alert_state  # already told: failing, or escalated earlier in this streak


def _threshold_reached(job: Job, run: JobRun) -> bool:
    """N final failures in a row, or M within the window (``AlertThreshold``, else the settings)."""
    thresholds = failure_thresholds(job.pk)
    if job.consecutive_failures >= thresholds.in_a_row:
        return True
    return bool(thresholds.in_window) and _failures_within(job, run, thresholds.window) >= thresholds.in_window


def _window_reached(job: Job, run: JobRun) -> bool:
    thresholds = failure_thresholds(job.pk)
    return bool(thresholds.in_window) and _failures_within(job, run, thresholds.window) >= thresholds.in_window


def _failures_within(job: Job, run: JobRun, window) -> int:
    """The job's final failures among its runs created within ``window`` before ``run`` ended: a
    failure the runner retried (a run with a higher attempt retries it) is not final. Reads the
    job's runs of the window on jobs_jobrun_job_created."""
    until = run.finished_at or timezone.now()
    retried = JobRun.objects.filter(retry_of=OuterRef("pk"), attempt__gt=OuterRef("attempt"))
    failures = JobRun.objects.filter(
        job_id=job.pk, created_at__gte=until - window, status__in=JobRun.FAILURE_STATUSES
    ).exclude(Exists(retried))
    return failures.count()


@transaction.atomic
def job_alerts_for_run(*, run_id: int, final: bool) -> str | None:
    """Move the job's alert state for this run's outcome and enqueue the e-mail it calls for.

    Returns the kind of e-mail queued ("failed", "escalated", "recovered") or None.
    """
    run = JobRun.objects.select_related("job").get(pk=run_id)
    job = Job.objects.select_for_update().get(pk=run.job_id)  # serialises two alerts for one job
    kind, state = _alert_kind(job, run, final)
    if kind in ("failed", "escalated") and (window := window_holding(job, run.finished_at or timezone.now())):
        # Inside one of the job's blackout windows (maintenance): nothing to tell, and nothing
        # recorded as told, so the first failure after the window is reported as usual.
        logger.info("job %s: %s alert for run %s held: inside blackout window %r", job.name, kind, run.pk, window)
        return None
    if state != job.alert_state:
        Job.objects.filter(pk=job.pk).update(alert_state=state, alert_state_changed_at=timezone.now())
    if kind is None or (kind == "recovered" and not job.notify_on_failure):
        return None
    if kind != "recovered":
        _log_failure_alert(kind, job, run)
    context = alert_context(job, run)
    if channels := alert_channels_for(job):
        alert = Alert(kind=kind, job_name=job.name, job_id=job.pk, key=str(run.pk), context=context)
        queued = alert_deliveries_record(channels=channels, alert=alert)
        _log_queued(kind, job, run, f"{queued} of {len(channels)} channel(s)")
        return kind
    recipients, _ = alert_recipients()  # JOBS_ALERT_RECIPIENTS, else the superusers
    if not recipients:
        logger.warning("job %s: %s alert not sent: no JOBS_ALERT_RECIPIENTS and no superuser e-mail", job.name, kind)
        return None
    queued = notifications_enqueue_many(
        messages=[
            {
                "recipient": recipient,
                "template": TEMPLATES[kind],
                "context": context,
                "dedupe_key": f"job-alert:{kind}:{run.pk}:{recipient}",
            }
            for recipient in recipients
        ]
    )
    _log_queued(kind, job, run, f"{queued} recipient(s)")
    return kind


def _log_queued(kind: str, job: Job, run: JobRun, where: str) -> None:
    system_log(
        event=f"job_alert_{kind}",
        level="info" if kind == "recovered" else "warning",
        job=job,
        message=f"Job {job.name}: {kind} alert for run #{run.pk} queued to {where}.",
        data={"run_id": run.pk, "consecutive_failures": job.consecutive_failures},
    )


def _log_failure_alert(kind: str, job: Job, run: JobRun) -> None:
    """Every failure alert is an ERROR log line too: it reaches whoever reads the logs (and Sentry,
    when SENTRY_DSN is set) while the mail server is down. Redacted here, stored secrets included:
    a handler on another logger would see the text before the console's redacting filter."""
    error = redact(one_line(run.error or ""), stored=True)
    logger.error(
        "job alert: %s job=%s run=%s status=%s failures=%s error=%s",
        kind,
        job.name,
        run.pk,
        run.status,
        job.consecutive_failures,
        error,
    )


def alert_context(job: Job, run: JobRun) -> dict:
    return {
        "job_name": job.name,
        "job_id": job.pk,
        "job_description": job.description,
        "run_id": run.pk,
        "status": run.get_status_display(),
        "attempt": run.attempt,
        "duration_seconds": round(run.duration.total_seconds(), 3) if run.duration else None,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "consecutive_failures": job.consecutive_failures,
        "escalate_after": job.escalate_after_failures,
        "error": redact(run.error or "", stored=True)[-ERROR_EXCERPT:],
    }
