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
    assert slow.startswith("Queue slow 2 ") and "oldest waiting 2 min" in slow
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


def test_it_counts_a_jittered_runs_wait_from_its_start_not_from_its_slot(staff_client, make_job):
    # Booked at its slot ten minutes ago, due since its jittered start 20 s ago.
    queued(make_job("nightly", jitter_seconds=900), ago=600, not_before=timezone.now() - timedelta(seconds=20))
    page = staff_client.get("/dashboard/").content.decode()
    assert re.search(r"oldest waiting 2\d(\.\d)? s", card(page, "celery"))
    health = re.search(r'data-health="queue".*?<b data-field="text">(.*?)</b>', page, re.S).group(1)
    assert re.fullmatch(r"1, oldest waiting 2\d(\.\d)? s", health), health


def test_it_shows_a_jobs_queue_and_its_jitter_on_its_page(staff_client, make_job, settings):
    settings.JOBS_QUEUES = ["slow"]
    job = make_job("ledger-export", queue="slow", jitter_seconds=120)
    page = staff_client.get("/dashboard/jobs/ledger-export/").content.decode()
    assert '<dd id="queue">slow</dd>' in page
    offset = job.jitter_offset.total_seconds()
    jitter = re.search(r'<dd id="jitter">(.*?)</dd>', page).group(1)
    assert jitter.startswith("each scheduled run starts ") and jitter.endswith("after its slot (up to 2 min 00 s)")
    assert 0 <= offset < 120
