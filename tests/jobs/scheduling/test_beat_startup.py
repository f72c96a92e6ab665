"""Beats started together each install Celery's default periodic task (the results clean-up).

On PostgreSQL another beat can commit that entry between this beat's look-up and its insert;
beat must still start cleanly with the entry in its schedule. (On SQLite the IMMEDIATE
transactions let one beat write at a time, so the look-up always sees the other's entry.)
"""

from __future__ import annotations

import logging
import threading

import pytest
from celery import current_app
from django.db import connection, connections
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from jobs.scheduling.beat import LeaderDatabaseScheduler

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]
CLEANUP = "celery.backend_cleanup"


def _another_beat_installs_the_cleanup() -> None:
    def install() -> None:
        try:
            crontab, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="4")
            PeriodicTask.objects.create(name=CLEANUP, task=CLEANUP, crontab=crontab)
        finally:
            connections.close_all()

    thread = threading.Thread(target=install)
    thread.start()
    thread.join()


def test_it_starts_when_another_beat_installs_the_same_entry_meanwhile(caplog):
    PeriodicTask.objects.filter(name=CLEANUP).delete()
    raced = []

    def other_beat_commits_after_the_lookup(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        looked_up = PeriodicTask._meta.db_table in sql and sql.lstrip().upper().startswith("SELECT")
        if not raced and looked_up and params and CLEANUP in params:
            raced.append(sql)
            _another_beat_installs_the_cleanup()
        return result

    caplog.set_level(logging.INFO)
    with connection.execute_wrapper(other_beat_commits_after_the_lookup):
        scheduler = LeaderDatabaseScheduler(app=current_app)
    try:
        assert raced, "the scheduler never looked the entry up"
        errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
        assert errors == []
        assert PeriodicTask.objects.filter(name=CLEANUP).count() == 1
        assert CLEANUP in scheduler.schedule
    finally:
        scheduler.close()
