"""audit-log-cleanup and purge-logs: old rows go in bounded batches; what must stay, stays."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.catalog.definitions import shipped_definitions
from jobs.models import AuditEntry, Job, JobRun, SystemLog
from jobs.operations.logs import audit_logs_cleanup, logs_purge, system_log
from notifications.models import Notification, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db
NOW = timezone.now()
OLD = NOW - timedelta(days=120)


def audit_entries(n: int, at) -> None:
    AuditEntry.objects.bulk_create(
        [AuditEntry(actor_label="admin", action="update", object_type="job", object_repr="x") for _ in range(n)]
    )
    AuditEntry.objects.filter(at__gt=at).exclude(object_repr="new").update(at=at)


def runs(job: Job, n: int, created_at, status=JobRun.Status.SUCCEEDED) -> list[int]:
    made = JobRun.objects.bulk_create(
        [JobRun(job=job, status=status, triggered_by=JobRun.Trigger.SCHEDULE) for _ in range(n)]
    )
    ids = [r.pk for r in made] if made[0].pk else list(JobRun.objects.filter(job=job).values_list("pk", flat=True))
    JobRun.objects.filter(pk__in=ids).update(created_at=created_at)
    return ids


def test_it_deletes_audit_and_system_logs_older_than_90_days_in_batches(settings):
    audit_entries(7, OLD)
    AuditEntry.objects.create(actor_label="admin", action="update", object_type="job", object_repr="new")
    for _ in range(3):
        system_log(event="old_event", message="old")
    SystemLog.objects.update(at=OLD)
    system_log(event="recent_event", message="recent")

    with CaptureQueriesContext(connection) as queries:
        summary = audit_logs_cleanup(now=NOW, batch_size=3)

    assert (summary["audit_entries"], summary["system_logs"]) == (7, 3)
    assert list(AuditEntry.objects.values_list("object_repr", flat=True)) == ["new"]
    assert set(SystemLog.objects.values_list("event", flat=True)) == {"recent_event", "audit_log_cleanup"}
    deletes = [q for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3 + 1  # 7 audit rows in batches of 3, then 3 system rows in one batch
    result = SystemLog.objects.get(event="audit_log_cleanup")
    assert "Deleted 7 audit entries and 3 system log rows older than 90 days" in result.message


def test_it_keeps_logs_younger_than_the_configured_retention(settings):
    settings.JOBS_AUDIT_RETENTION_DAYS = 200
    audit_entries(2, OLD)
    assert audit_logs_cleanup(now=NOW)["audit_entries"] == 0
    assert AuditEntry.objects.count() == 2


def test_it_runs_audit_log_cleanup_as_a_job_command_with_dry_run():
    audit_entries(4, OLD)
    out = StringIO()
    call_command("audit_log_cleanup", "--dry-run", stdout=out)
    assert json.loads(out.getvalue().splitlines()[-1])["audit_entries"] == 4
    assert AuditEntry.objects.count() == 4
    call_command("audit_log_cleanup", stdout=StringIO())
    assert AuditEntry.objects.count() == 0


def test_it_purges_old_runs_but_keeps_each_jobs_newest_and_active_ones(make_job):
    busy = make_job("busy")
    rare = make_job("rare", command="test_job")
    old_busy = runs(busy, 30, OLD)
    recent_busy = runs(busy, 5, NOW - timedelta(days=1))
    old_rare = runs(rare, 3, OLD)  # all old, but it has only 3 runs: they are its newest
    # A run that is somehow still queued from long ago is never deleted by retention.
    stuck = runs(make_job("stuck"), 1, OLD, status=JobRun.Status.QUEUED)

    summary = logs_purge(now=NOW, keep=10, batch_size=7)

    assert summary["job_runs"] == 25
    remaining_busy = set(JobRun.objects.filter(job=busy).values_list("pk", flat=True))
    assert remaining_busy == set(recent_busy) | set(sorted(old_busy)[-5:])
    assert set(JobRun.objects.filter(job=rare).values_list("pk", flat=True)) == set(old_rare)
    assert JobRun.objects.filter(pk__in=stuck).exists()


def test_it_purges_sent_and_dead_notifications_and_finished_deliveries_but_not_pending_ones(make_job):
    def notification(status, created_at):
        n = Notification.objects.create(
            recipient="a@example.com", template="notifications/test_message", status=status, send_after=NOW
        )
        Notification.objects.filter(pk=n.pk).update(created_at=created_at)
        return n.pk

    kept = [
        notification(Notification.Status.QUEUED, OLD),
        notification(Notification.Status.RETRYING, OLD),
        notification(Notification.Status.SENT, NOW - timedelta(days=10)),
    ]
    for status in (Notification.Status.SENT, Notification.Status.DEAD, Notification.Status.CANCELLED):
        notification(status, OLD)
    hook = WebhookEndpoint.objects.create(name="a", url="https://a.example.com/", events=["*"])
    for status in WebhookDelivery.Status.values:
        d = WebhookDelivery.objects.create(endpoint=hook, event="x", status=status, next_attempt_at=NOW)
        WebhookDelivery.objects.filter(pk=d.pk).update(created_at=OLD)

    out = StringIO()
    call_command("purge_logs", "--as-of", NOW.isoformat(), stdout=out)
    summary = json.loads(out.getvalue().splitlines()[-1])

    assert (summary["notifications"], summary["webhook_deliveries"]) == (3, 2)
    assert sorted(Notification.objects.values_list("pk", flat=True)) == sorted(kept)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"pending", "sending", "retrying"}
    assert SystemLog.objects.filter(event="purge_logs").count() == 1


def test_it_registers_the_notification_and_retention_jobs_for_seed_jobs():
    by_name = {d.name: d for d in shipped_definitions()}
    assert by_name["process-notifications"].interval_seconds == 30
    assert by_name["retry-webhooks"].cron_expression == "30 9 * * *"
    assert by_name["audit-log-cleanup"].cron_expression == "0 3 * * *"
    assert by_name["purge-logs"].cron_expression == "0 4 * * *"

    call_command("seed_jobs", verbosity=0)
    assert set(Job.objects.values_list("name", flat=True)) >= {
        "process-notifications",
        "retry-webhooks",
        "audit-log-cleanup",
        "purge-logs",
    }
    assert Job.objects.get(name="process-notifications").escalate_after_failures == 3


def test_it_has_a_migration_for_every_model_change():
    call_command("makemigrations", "jobs", "notifications", "--check", "--dry-run", verbosity=0)
