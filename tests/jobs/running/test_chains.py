"""Chains: a job that waits, for each slot, until the jobs it waits on have succeeded for the same
period; recorded as waiting until then, failed with the reason when one failed or the deadline
passed, and run month by month when the chain is backfilled."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from billing.models import LedgerEntry, OwnerStatement, RecurringExpense
from jobs.models import BlackoutWindow, Job, JobDependency, JobRun
from jobs.running.chains import chain_period, chains_release
from jobs.running.maintenance import runs_sweep
from jobs.running.run_requests import backfill_start
from jobs.running.runner import run_execute
from jobs.scheduling.firing import due_jobs_fire
from tests.jobs.billing_jobs import build  # noqa: F401  (build: a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("alert_recipients")]
Status = JobRun.Status


def at(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def job_make(name: str, command: str, cron: str, *, waits_for=(), **fields) -> Job:
    job = Job(name=name, command=command, cron_expression=cron, **fields)
    job.full_clean()
    job.save()
    for upstream in waits_for:
        JobDependency.objects.create(job=job, upstream=upstream)
    return job


def fire(job: Job, slot: datetime, *, callbacks) -> JobRun:
    """Beat records ``job``'s ``slot`` on time (and what its commit sets off); the slot's run."""
    Job.objects.filter(pk=job.pk).update(next_fire_at=slot, late_at=slot + timedelta(minutes=5))
    with callbacks(execute=True):
        due_jobs_fire(now=slot + timedelta(seconds=1))
    return JobRun.objects.get(job=job, scheduled_for=slot)


def execute(run: JobRun, *, callbacks) -> JobRun:
    with callbacks(execute=True):
        return run_execute(run.pk)


def test_it_defines_the_period_as_the_span_of_the_downstream_schedule_ending_at_its_slot():
    statements = Job(name="statements", command="test_job", cron_expression="0 8 1 * *")
    assert chain_period(statements, at(2025, 3, 1, 8)) == (at(2025, 2, 1, 8), at(2025, 3, 1, 8))


def test_it_waits_for_its_upstreams_and_runs_once_they_have_succeeded(django_capture_on_commit_callbacks):
    callbacks = django_capture_on_commit_callbacks
    charges = job_make("charges", "test_job", "0 6 1 * *")
    expenses = job_make("expenses", "test_job", "0 7 1 * *")
    statements = job_make("statements", "test_job", "0 8 1 * *", waits_for=[charges, expenses])
    # Beat was late with the upstreams: the statements' slot is recorded first, and waits.
    waiting = fire(statements, at(2025, 3, 1, 8), callbacks=callbacks)
    assert (waiting.status, waiting.dispatched_at) == (Status.WAITING, None)
    execute(fire(charges, at(2025, 3, 1, 6), callbacks=callbacks), callbacks=callbacks)
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING  # expenses has not run for the period yet
    execute(fire(expenses, at(2025, 3, 1, 7), callbacks=callbacks), callbacks=callbacks)
    waiting.refresh_from_db()
    assert waiting.status == Status.QUEUED and waiting.dispatched_at is not None
    assert execute(waiting, callbacks=callbacks).status == Status.SUCCEEDED


def test_it_is_released_by_the_sweep_when_no_upstream_end_announced_it(django_capture_on_commit_callbacks):
    callbacks = django_capture_on_commit_callbacks
    charges = job_make("charges", "test_job", "0 6 1 * *")
    statements = job_make("statements", "test_job", "0 8 1 * *", waits_for=[charges])
    upstream = fire(charges, at(2025, 3, 1, 6), callbacks=callbacks)
    waiting = fire(statements, at(2025, 3, 1, 8), callbacks=callbacks)
    # The upstream's worker died after its commit, before run_finished reached anyone.
    JobRun.objects.filter(pk=upstream.pk).update(status=Status.SUCCEEDED, finished_at=at(2025, 3, 1, 6, 5))
    with callbacks(execute=True):
        swept = runs_sweep(now=at(2025, 3, 1, 8, 1))
    assert swept["chains_released"] == 1
    waiting.refresh_from_db()
    assert waiting.status == Status.QUEUED


def test_it_fails_with_the_reason_when_an_upstream_failed(django_capture_on_commit_callbacks, mailoutbox):
    callbacks = django_capture_on_commit_callbacks
    charges = job_make("charges", "test_fail_job", "0 6 1 * *")
    statements = job_make("statements", "test_job", "0 8 1 * *", waits_for=[charges])
    failed = execute(fire(charges, at(2025, 3, 1, 6), callbacks=callbacks), callbacks=callbacks)
    assert failed.status == Status.FAILED
    run = fire(statements, at(2025, 3, 1, 8), callbacks=callbacks)
    assert run.status == Status.FAILED
    period = "the period 2025-02-01 08:00 to 2025-03-01 08:00 UTC"
    assert run.error.startswith(f"Chain: upstream charges failed for {period} (run #{failed.pk}: failed)")
    statements.refresh_from_db()
    assert (statements.last_run_status, statements.consecutive_failures) == (Status.FAILED, 1)


def test_it_fails_when_an_upstream_never_succeeds_within_the_deadline(django_capture_on_commit_callbacks):
    callbacks = django_capture_on_commit_callbacks
    charges = job_make("charges", "test_job", "0 6 1 * *")
    statements = job_make("statements", "test_job", "0 8 1 * *", waits_for=[charges], chain_deadline_seconds=3600)
    run = fire(statements, at(2025, 3, 1, 8), callbacks=callbacks)
    assert chains_release(now=at(2025, 3, 1, 8, 59)) == {"released": 0, "failed": 0, "skipped": 0}
    assert chains_release(now=at(2025, 3, 1, 9, 0, 2)) == {"released": 0, "failed": 1, "skipped": 0}
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "charges did not succeed for the period" in run.error and "within 3600 s" in run.error


def test_it_is_skipped_with_the_window_when_its_upstreams_slot_was(django_capture_on_commit_callbacks):
    callbacks = django_capture_on_commit_callbacks
    charges = job_make("charges", "test_job", "0 6 1 * *")
    statements = job_make("statements", "test_job", "0 8 1 * *", waits_for=[charges])
    closed = BlackoutWindow.objects.create(
        name="year-end-close", starts_on=date(2025, 3, 1), ends_on=date(2025, 3, 1), ends_at=datetime(1, 1, 1, 7).time()
    )
    closed.jobs.set([charges])
    assert fire(charges, at(2025, 3, 1, 6), callbacks=callbacks).status == Status.SKIPPED
    run = fire(statements, at(2025, 3, 1, 8), callbacks=callbacks)
    assert (run.status, run.window_name) == (Status.SKIPPED, "year-end-close")
    statements.refresh_from_db()
    assert statements.consecutive_failures == 0  # nothing failed, nothing to alert about


def test_it_backfills_a_chain_over_three_months_in_order_billing_each_month_once(
    build,  # noqa: F811
    superuser,
    settings,
    tmp_path,
    django_capture_on_commit_callbacks,
):
    settings.BILLING_STATEMENTS_DIR = tmp_path / "statements"
    owner = build.owner(name="Alice Owner", management_fee_percent=Decimal("10.00"))
    maple = build.property(owner, name="12 Maple Street")
    lease = build.lease(rent="1200.00", due_day=5, start="2024-06-01", end="2040-05-31", unit=build.unit(maple))
    RecurringExpense.objects.create(
        property=maple, description="Landscaping", amount=Decimal("200.00"), starts_on=date(2024, 1, 1)
    )
    charges = job_make("generate-charges", "generate_charges", "0 6 1 * *")
    expenses = job_make("recurring-expenses", "recurring_expenses", "0 7 1 * *")
    statements = job_make("generate-statements", "generate_statements", "0 8 1 * *", waits_for=[charges, expenses])
    months = [at(2025, month, 1) for month in (2, 3, 4)]

    with django_capture_on_commit_callbacks(execute=True):
        # The downstream's backfill first: each of its months waits for that month's upstreams.
        for job, hour in ((statements, 8), (charges, 6), (expenses, 7)):
            backfill_start(job=job, slots=[month.replace(hour=hour) for month in months], user=superuser)
    assert JobRun.objects.get(job=statements).status == Status.WAITING

    ran = []
    while (queued := JobRun.objects.filter(status=Status.QUEUED).order_by("created_at", "id").first()) is not None:
        finished = execute(queued, callbacks=django_capture_on_commit_callbacks)
        assert finished.status == Status.SUCCEEDED, finished.error
        ran.append((finished.job.name, finished.options["as_of"][:7]))
        assert len(ran) <= 9

    assert sorted(ran) == sorted((job.name, f"2025-0{m}") for job in (charges, expenses, statements) for m in (2, 3, 4))
    for month in ("2025-02", "2025-03", "2025-04"):
        order = [name for name, as_of in ran if as_of == month]
        assert order.index("generate-statements") > max(
            order.index("generate-charges"), order.index("recurring-expenses")
        )
    assert [as_of for name, as_of in ran if name == "generate-statements"] == ["2025-02", "2025-03", "2025-04"]
    # Each month billed once, and each statement saw its month's charges.
    charged = sorted(LedgerEntry.objects.filter(lease=lease, kind="charge").values_list("due_date", flat=True))
    assert charged == [date(2025, 2, 5), date(2025, 3, 5), date(2025, 4, 5)]
    periods = list(OwnerStatement.objects.filter(owner=owner).order_by("period").values_list("period", "rent_billed"))
    assert [period for period, _ in periods] == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
    assert [billed for _, billed in periods][1:] == [Decimal("1200.00"), Decimal("1200.00")]


def test_it_records_a_caught_up_slot_of_a_chained_job_as_waiting(settings, django_capture_on_commit_callbacks):
    settings.JOBS_CATCH_UP_TOLERANCE_SECONDS = 10
    callbacks = django_capture_on_commit_callbacks
    charges = job_make("charges", "test_job", "0 6 1 * *")
    statements = job_make("statements", "test_job", "0 8 1 * *", waits_for=[charges])
    # Beat was down over the statements' slot: caught up an hour late (policy latest), it waits.
    Job.objects.filter(pk=statements.pk).update(next_fire_at=at(2025, 3, 1, 8), late_at=at(2025, 3, 1, 8, 5))
    with callbacks(execute=True):
        due_jobs_fire(now=at(2025, 3, 1, 9))
    run = JobRun.objects.get(job=statements)
    assert (run.scheduled_for, run.status) == (at(2025, 3, 1, 8), Status.WAITING)
    execute(fire(charges, at(2025, 3, 1, 6), callbacks=callbacks), callbacks=callbacks)
    run.refresh_from_db()
    assert run.status == Status.QUEUED


def test_it_skips_a_waiting_run_whose_job_was_disabled_meanwhile(django_capture_on_commit_callbacks):
    callbacks = django_capture_on_commit_callbacks
    charges = job_make("charges", "test_job", "0 6 1 * *")
    statements = job_make("statements", "test_job", "0 8 1 * *", waits_for=[charges])
    run = fire(statements, at(2025, 3, 1, 8), callbacks=callbacks)
    statements.enabled = False
    statements.save()
    execute(fire(charges, at(2025, 3, 1, 6), callbacks=callbacks), callbacks=callbacks)
    run.refresh_from_db()
    assert (run.status, run.skip_reason) == (Status.SKIPPED, "job is paused")


def test_it_cancels_a_waiting_run_from_its_page_and_lets_the_next_slot_go(
    staff_client, django_capture_on_commit_callbacks
):
    callbacks = django_capture_on_commit_callbacks
    charges = job_make("charges", "test_job", "0 6 1 * *")
    statements = job_make("statements", "test_job", "0 8 1 * *", waits_for=[charges])
    # March's charges never ran; April's did. April's statements wait their turn behind March's.
    march = fire(statements, at(2025, 3, 1, 8), callbacks=callbacks)
    execute(fire(charges, at(2025, 4, 1, 6), callbacks=callbacks), callbacks=callbacks)
    april = fire(statements, at(2025, 4, 1, 8), callbacks=callbacks)
    assert (march.status, april.status) == (Status.WAITING, Status.WAITING)

    assert 'id="cancel-form"' in staff_client.get(f"/dashboard/runs/{march.pk}/").content.decode()
    with callbacks(execute=True):
        response = staff_client.post(
            f"/dashboard/runs/{march.pk}/cancel", {"reason": "March billed by hand"}, follow=True
        )
    assert f"Run #{march.pk} cancelled: it will not start." in response.content.decode()
    march.refresh_from_db()
    assert (march.status, march.cancelled_by, march.cancel_reason) == (Status.CANCELLED, "boss", "March billed by hand")
    april.refresh_from_db()
    assert april.status == Status.QUEUED
    # March's charges running late no longer starts March's statements.
    execute(fire(charges, at(2025, 3, 1, 6), callbacks=callbacks), callbacks=callbacks)
    march.refresh_from_db()
    assert march.status == Status.CANCELLED
