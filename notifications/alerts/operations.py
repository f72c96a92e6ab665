"""Alerts to staff about late and slow jobs (to the job's channels, else e-mail), beside
``alerts.py``'s failure alerts.

``jobs`` announces, and this module listens (connected in ``alerts.py``):

* ``lateness_changed(started, ended)`` -- each late episode once when it starts (a "late" alert)
  and once when it ends (a "no longer late" notice, to the destinations told it was late); many
  at once become one summary per destination (``late_summary``);
* ``run_slow(run)`` (still running past the expected duration) and ``run_finished`` with
  ``run.slow`` -- a "slow" e-mail, once per run whichever comes first.

process-jobs makes each announcement once (conditional UPDATEs); the dedupe key per
(kind, job and slot or run, recipient) makes a repeated signal harmless all the same.
Late e-mails follow the job's *notify on failure* switch; slow e-mails go for every job with
an expected duration (setting one is the opt-in). A paused job (``enabled`` off) gets neither.
Errors are logged, never raised into jobs.
"""

from __future__ import annotations

import logging

from django.db import transaction

from jobs.models import Job, JobRun
from jobs.operations.health import alert_recipients
from jobs.operations.logs import system_log
from notifications.channels.delivery import alert_deliveries_record, alert_recorded_on
from notifications.channels.messages import Alert
from notifications.channels.routing import alert_channels_for
from notifications.models import NotificationKey
from notifications.services import notifications_enqueue_many

logger = logging.getLogger(__name__)
TEMPLATES = {
    "late": "job_alerts/late",
    "late_recovered": "job_alerts/late_recovered",
    "slow": "job_alerts/slow",
}


def _enqueue(*, kind: str, job: Job, key: str, context: dict) -> int:
    if channels := alert_channels_for(job):
        if kind == "late_recovered":
            # Only where the late alert itself went: a job named in a summary, or paused before
            # its alert, has no incident of its own to close.
            if not (channels := alert_recorded_on(channels, kind="late", key=key)):
                return 0
        context = {"schedule": job.schedule_description, **context}
        alert = Alert(kind=kind, job_name=job.name, job_id=job.pk, key=key, context=context)
        with transaction.atomic():
            return alert_deliveries_record(channels=channels, alert=alert)
    recipients, _ = alert_recipients()  # JOBS_ALERT_RECIPIENTS, else the superusers
    if not recipients:
        logger.warning("job %s: %s alert not sent: no JOBS_ALERT_RECIPIENTS and no superuser e-mail", job.name, kind)
        return 0
    if kind == "late_recovered":
        told = {f"job-alert:late:{key}:{recipient}": recipient for recipient in recipients}
        recipients = [told[key] for key in NotificationKey.objects.filter(key__in=told).values_list("key", flat=True)]
    queued = notifications_enqueue_many(
        messages=[
            {
                "recipient": recipient,
                "template": TEMPLATES[kind],
                "context": {"job_name": job.name, "job_id": job.pk, "schedule": job.schedule_description, **context},
                "dedupe_key": f"job-alert:{kind}:{key}:{recipient}",
            }
            for recipient in recipients
        ]
    )
    if queued:
        system_log(
            event=f"job_alert_{kind}",
            level="info" if kind == "late_recovered" else "warning",
            job=job,
            message=f"Job {job.name}: {kind.replace('_', ' ')} alert queued to {queued} recipient(s).",
            data={"key": key},
        )
    return queued


def job_lateness_alert(*, job: Job, late: bool, slot, now) -> int:
    """Queue the late (or no-longer-late) e-mail of one episode; how many were new."""
    if not job.notify_on_failure or (late and not _still_enabled(job.pk)):
        return 0  # a paused job is never late; the end of an episode still closes its incident
    kind = "late" if late else "late_recovered"
    context = {"slot": slot, "now": now, "minutes_late": int((now - slot).total_seconds() // 60)}
    return _enqueue(kind=kind, job=job, key=f"{job.pk}:{slot.isoformat()}", context=context)


def _still_enabled(job_id: int) -> bool:
    """Read now, not from the announcing process's copy: the job may have been paused since."""
    return Job.objects.filter(pk=job_id, enabled=True).exists()


def run_slow_alert(*, run: JobRun) -> int:
    job = run.job
    if not _still_enabled(job.pk):
        return 0  # paused while this run was going: quiet until it is resumed
    context = {
        "run_id": run.pk,
        "status": run.get_status_display(),
        "expected_seconds": job.expected_duration_seconds,
        "duration_seconds": round(run.duration.total_seconds(), 3) if run.duration else None,
        "started_at": run.started_at,
        "finished": run.finished_at is not None,
    }
    return _enqueue(kind="slow", job=job, key=str(run.pk), context=context)


def on_run_slow(sender, run: JobRun, **kwargs) -> None:
    try:
        run_slow_alert(run=run)
    except Exception:
        logger.exception("slow alert for run %s failed", run.pk)
