"""Backfilling a date range from the job page: the slots listed for confirmation, then run one at a
time, oldest first, each as of its slot, moved on by the end of the run before (no page open)."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from billing.models import LedgerEntry
from jobs.models import Backfill, JobRun
from jobs.running.run_requests import BACKFILL_MAX_SLOTS
from jobs.running.runner import run_execute
from tests.jobs.billing_jobs import build, charges_job_create  # noqa: F401  (build: a fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def charges_job():
    return charges_job_create()


def backfill_url(job) -> str:
    return reverse("jobs:backfill-new", args=[job.name])


def test_it_backfills_three_monthly_slots_one_at_a_time_oldest_first(
    staff_client,
    build,  # noqa: F811
    charges_job,
    django_capture_on_commit_callbacks,
):
    lease = build.lease(rent="1200.00", due_day=5, start="2024-06-01", end="2040-05-31")
    listed = staff_client.post(backfill_url(charges_job), {"start": "2025-01-01", "end": "2025-03-31"})
    assert listed.status_code == 200
    page = listed.content.decode()
    assert "3 slots to run" in page
    assert page.index("2025-01-01 06:00") < page.index("2025-02-01 06:00") < page.index("2025-03-01 06:00")
    assert not JobRun.objects.exists()

    started = staff_client.post(backfill_url(charges_job), {"start": "2025-01-01", "end": "2025-03-31", "confirm": "1"})
    backfill = Backfill.objects.get()
    assert started["Location"] == reverse("jobs:backfill", args=[backfill.pk])

    as_of = []
    while (queued := JobRun.objects.filter(status=JobRun.Status.QUEUED).first()) is not None:
        assert JobRun.objects.filter(status__in=JobRun.ACTIVE_STATUSES).count() == 1
        as_of.append(queued.options["as_of"])
        with django_capture_on_commit_callbacks(execute=True):
            finished = run_execute(queued.pk)
            assert finished.status == JobRun.Status.SUCCEEDED, finished.error

    assert as_of == ["2025-01-01T06:00:00+00:00", "2025-02-01T06:00:00+00:00", "2025-03-01T06:00:00+00:00"]
    due = sorted(LedgerEntry.objects.filter(lease=lease, kind="charge").values_list("due_date", flat=True))
    assert due == [date(2025, 1, 5), date(2025, 2, 5), date(2025, 3, 5)]
    progress = staff_client.get(reverse("jobs:backfill", args=[backfill.pk])).content.decode()
    assert "3 of 3 slots done" in progress and progress.count(">succeeded</span>") == 3
    assert "location.reload" not in progress
    backfill.refresh_from_db()
    assert backfill.status == Backfill.Status.DONE


def test_it_shows_progress_and_refreshes_while_a_backfill_runs(staff_client, charges_job):
    staff_client.post(backfill_url(charges_job), {"start": "2025-01-01", "end": "2025-02-28", "confirm": "1"})
    backfill = Backfill.objects.get()
    first = JobRun.objects.get()

    progress = staff_client.get(reverse("jobs:backfill", args=[backfill.pk])).content.decode()

    assert "0 of 2 slots done" in progress and f"#{first.pk}</a>" in progress
    assert ">queued</span>" in progress and "waiting" in progress and "location.reload" in progress


def test_it_refuses_a_range_with_too_many_slots(staff_client, make_job):
    job = make_job("minutely", cron_expression="* * * * *")
    response = staff_client.post(backfill_url(job), {"start": "2025-01-01", "end": "2025-01-01", "confirm": "1"})
    assert response.status_code == 200
    assert f"More than {BACKFILL_MAX_SLOTS} slots in that range" in response.content.decode()
    assert not Backfill.objects.exists() and not JobRun.objects.exists()


def test_it_stops_starting_slots_once_stopped(staff_client, charges_job, django_capture_on_commit_callbacks):
    staff_client.post(backfill_url(charges_job), {"start": "2025-01-01", "end": "2025-03-31", "confirm": "1"})
    backfill = Backfill.objects.get()
    staff_client.post(reverse("jobs:backfill-stop", args=[backfill.pk]))

    with django_capture_on_commit_callbacks(execute=True):
        run_execute(JobRun.objects.get().pk)

    assert JobRun.objects.count() == 1
    progress = staff_client.get(reverse("jobs:backfill", args=[backfill.pk])).content.decode()
    assert "stopped" in progress and progress.count("not run") == 2


def test_it_answers_403_to_a_user_who_may_not_run_the_job(client, staff_user, charges_job):
    from django.contrib.auth.models import Permission

    staff_user.user_permissions.add(Permission.objects.get(codename="view_jobrun"))
    client.force_login(staff_user)
    response = client.post(backfill_url(charges_job), {"start": "2025-01-01", "end": "2025-03-31", "confirm": "1"})
    assert response.status_code == 403
    assert not Backfill.objects.exists() and not JobRun.objects.exists()


def test_it_starts_a_slot_held_up_by_another_run_once_that_run_ends(
    staff_client, charges_job, django_capture_on_commit_callbacks
):
    from jobs.running.runner import run_trigger

    scheduled = run_trigger(job=charges_job, triggered_by=JobRun.Trigger.SCHEDULE, dispatch=False).run
    staff_client.post(backfill_url(charges_job), {"start": "2025-01-01", "end": "2025-02-28", "confirm": "1"})
    assert not JobRun.objects.filter(options__as_of__isnull=False, status=JobRun.Status.QUEUED).exists()

    with django_capture_on_commit_callbacks(execute=True):
        run_execute(scheduled.pk)

    queued = JobRun.objects.get(status=JobRun.Status.QUEUED)
    assert queued.options["as_of"] == "2025-01-01T06:00:00+00:00"


def test_it_leaves_a_backfill_alone_when_a_run_outside_it_ends(
    staff_client, charges_job, django_capture_on_commit_callbacks
):
    from jobs.running.runner import run_trigger

    staff_client.post(backfill_url(charges_job), {"start": "2025-01-01", "end": "2025-02-28", "confirm": "1"})
    first = JobRun.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        run_execute(first.pk)
    second = JobRun.objects.get(status=JobRun.Status.QUEUED)
    Backfill.objects.update(status=Backfill.Status.STOPPED)
    with django_capture_on_commit_callbacks(execute=True):
        run_execute(second.pk)
    Backfill.objects.update(status=Backfill.Status.RUNNING)  # "Continue" would move it on; no run does

    manual = run_trigger(job=charges_job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run
    with django_capture_on_commit_callbacks(execute=True):
        run_execute(manual.pk)

    assert not JobRun.objects.filter(status=JobRun.Status.QUEUED).exists()
    assert Backfill.objects.get().position == 1
