"""The dashboard's queue cards: each configured queue's waiting runs and its oldest, from the runs."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import JobRun

pytestmark = pytest.mark.django_db


def queued(job, *, ago: float, **fields) -> JobRun:
    return JobRun.objects.create(
        job=job, triggered_by="schedule", created_at=timezone.now() - timedelta(seconds=ago), **fields
    )


def card(page: str, name: str) -> str:
    found = re.search(rf'<div data-queue="{name}">(.*?)</div>', page, re.S)
    assert found, f"no card for queue {name}"
    return re.sub(r"<[^>]+>", " ", found.group(1))


def test_it_shows_each_queues_waiting_runs_and_how_long_the_oldest_waited(staff_client, make_job, settings):
    settings.JOBS_QUEUES = ["slow", "reports"]
    queued(make_job("ledger-export", queue="slow"), ago=125)
    queued(make_job("statements", queue="slow"), ago=10)
    queued(make_job("charges"), ago=3)
    # A retry still before its time, and a run already started, wait in no queue.
    queued(make_job("payouts", queue="slow"), ago=900, not_before=timezone.now() + timedelta(minutes=5))
    JobRun.objects.create(job=make_job("purge", queue="slow"), triggered_by="manual", status="running")

    page = staff_client.get("/dashboard/").content.decode()
    slow = " ".join(card(page, "slow").split())
    assert slow.startswith("Queue slow 2 ") and "oldest waiting 2 min 05 s" in slow
    assert " ".join(card(page, "celery").split()).startswith("Queue celery 1 oldest waiting")
    assert " ".join(card(page, "reports").split()) == "Queue reports 0 none waiting"

    data = json.loads(staff_client.get("/dashboard/data.json").content)
    assert [(queue["name"], queue["waiting"]) for queue in data["queues"]] == [
        ("celery", 1),
        ("slow", 2),
        ("reports", 0),
    ]


def test_it_names_a_queue_no_worker_takes_any_more(staff_client, make_job, settings):
    settings.JOBS_QUEUES = ["slow"]
    queued(make_job("ledger-export", queue="slow"), ago=30)
    settings.JOBS_QUEUES = []
    page = staff_client.get("/dashboard/").content.decode()
    assert "not configured: no worker takes it" in card(page, "slow")
