"""process-jobs cannot wedge itself, and a worker reconnects after a database restart."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import current_app
from django.db import OperationalError, connection
from django.utils import timezone

from core.db_recovery import drop_broken_connections
from jobs.models import JobRun
from jobs.running import maintenance
from jobs.scheduling import beat
from jobs.scheduling.beat import LeaderDatabaseScheduler

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("alert_recipients")]


def _lost(job) -> JobRun:
    run = JobRun.objects.create(job=job, triggered_by=JobRun.Trigger.SCHEDULE)
    JobRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    return run


def test_it_stops_a_beat_sweep_at_the_first_failed_publish(make_job, monkeypatch):
    for name in ("a", "b", "c"):
        _lost(make_job(name))
    calls = []
    monkeypatch.setattr(maintenance, "run_resend", lambda run_id: calls.append(run_id) and False)
    swept = maintenance.runs_sweep(now=timezone.now(), stop_on_dispatch_failure=True)
    assert (len(calls), swept["dispatch_failed"]) == (1, 1)
    assert maintenance.runs_sweep(now=timezone.now())["dispatch_failed"] == 3


def test_it_re_sends_process_jobs_own_lost_run_from_beats_sweep(make_job, monkeypatch):
    process_jobs = make_job("process-jobs", command="process_jobs")
    lost = _lost(process_jobs)
    sent = []
    monkeypatch.setattr(maintenance, "run_resend", lambda run_id: sent.append(run_id) or True)
    monkeypatch.setattr(beat, "close_old_connections", lambda: None)  # it would end the test's transaction
    scheduler = LeaderDatabaseScheduler(app=current_app, lazy=True)  # no beat loop needed
    try:
        scheduler._maintain()
    finally:
        scheduler.close()
    assert sent == [lost.pk]


def test_it_drops_connections_after_a_task_fails_on_the_database(monkeypatch):
    closed = []
    monkeypatch.setattr(connection, "close", lambda: closed.append(True))
    drop_broken_connections(exception=ValueError("not the database"))
    assert closed == []
    drop_broken_connections(exception=OperationalError("terminating connection due to administrator command"))
    assert closed == [True]
