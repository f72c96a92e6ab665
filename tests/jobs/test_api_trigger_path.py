"""The HTTP trigger's fast path: one statement on PostgreSQL (jobs.trigger_sql), the ORM
elsewhere, messages sent by the process's background publisher, a rate count of at most one
Redis round trip."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.test import RequestFactory
from django.utils import timezone
from django_ratelimit.core import get_usage

from jobs import publisher, runner, trigger_sql
from jobs.models import Job, JobRun
from jobs.runner import JobDisabled, run_trigger, run_trigger_by_key
from jobs.views import guards, rate_counter

pytestmark = pytest.mark.django_db
API = JobRun.Trigger.API


def test_it_queues_a_run_by_name_or_id_and_names_the_job(make_job):
    job = make_job("nightly")
    by_name = run_trigger_by_key(name="nightly", triggered_by=API)
    assert by_name.queued and by_name.run.job.name == "nightly"
    JobRun.objects.update(status=JobRun.Status.SUCCEEDED)
    by_id = run_trigger_by_key(job_id=job.pk, triggered_by=API)
    assert by_id.queued and by_id.run.job.name == "nightly"
    assert {run.pk for run in JobRun.objects.filter(status="queued")} == {by_id.run.pk}


def test_it_raises_for_an_unknown_job_and_writes_nothing(make_job):
    make_job("nightly")
    with pytest.raises(Job.DoesNotExist):
        run_trigger_by_key(name="nope", triggered_by=API)
    with pytest.raises(Job.DoesNotExist):
        run_trigger_by_key(job_id=10**12, triggered_by=API)
    assert not JobRun.objects.exists()


def test_it_refuses_a_disabled_job_and_writes_nothing(make_job):
    make_job("nightly", enabled=False)
    with pytest.raises(JobDisabled):
        run_trigger_by_key(name="nightly", triggered_by=API)
    assert not JobRun.objects.exists()


def test_it_records_a_skip_naming_the_active_run(make_job):
    make_job("nightly")
    first = run_trigger_by_key(name="nightly", triggered_by=API).run
    second = run_trigger_by_key(name="nightly", triggered_by=API)
    assert second.outcome == "skipped"
    skipped = JobRun.objects.get(pk=second.run.pk)
    assert skipped.status == JobRun.Status.SKIPPED and skipped.blocked_by_id == first.pk
    assert skipped.skip_reason == f"run #{first.pk} is queued"


def test_it_keeps_the_callers_transaction_usable_after_a_conflict(make_job):
    make_job("nightly")
    with transaction.atomic():
        first = run_trigger_by_key(name="nightly", triggered_by=API)
        second = run_trigger_by_key(name="nightly", triggered_by=API)
        # Neither the conflict nor the recorded skip broke the transaction.
        assert JobRun.objects.count() == 2
    assert (first.outcome, second.outcome) == ("queued", "skipped")
    assert JobRun.objects.get(pk=second.run.pk).blocked_by_id == first.run.pk


def test_it_rolls_back_with_the_callers_transaction(make_job):
    make_job("nightly")
    with pytest.raises(RuntimeError), transaction.atomic():
        run_trigger_by_key(name="nightly", triggered_by=API)
        raise RuntimeError("caller failed")
    assert not JobRun.objects.exists()


def test_it_writes_the_same_row_as_the_orm_path(make_job, django_user_model):
    """Every column the one statement fills by hand matches what the ORM writes."""
    user = django_user_model.objects.create_user("ops", password="pw-123456789")
    fast = run_trigger_by_key(name=make_job("fast").name, triggered_by=API, user=user).run
    orm = run_trigger(job=make_job("orm"), triggered_by=API, user=user).run
    ignored = {"id", "job", "created_at", "dispatched_at", "celery_task_id"}
    fast_row, orm_row = (model_to_dict(JobRun.objects.get(pk=run.pk)) for run in (fast, orm))
    assert {k: v for k, v in fast_row.items() if k not in ignored} == {
        k: v for k, v in orm_row.items() if k not in ignored
    }
    stored = JobRun.objects.get(pk=fast.pk)
    assert abs(stored.dispatched_at - stored.created_at) < timedelta(seconds=1)
    assert stored.celery_task_id == fast.celery_task_id and uuid.UUID(stored.celery_task_id)
    # The in-memory run the caller gets is the stored one.
    assert model_to_dict(fast) == model_to_dict(stored)


def test_it_records_the_same_skip_as_the_orm_path(make_job, django_user_model):
    """A trigger that meets an active run records the row run_trigger's ORM path records."""
    user = django_user_model.objects.create_user("ops", password="pw-123456789")
    fast_job, orm_job = make_job("fast"), make_job("orm")
    fast_active = run_trigger_by_key(name="fast", triggered_by=API).run_id
    orm_active = run_trigger(job=orm_job, triggered_by=API).run.pk
    fast = run_trigger_by_key(name="fast", triggered_by=API, user=user)
    orm = run_trigger(job=orm_job, triggered_by=API, user=user)
    assert fast.outcome == orm.outcome == "skipped"
    fast_row, orm_row = (model_to_dict(JobRun.objects.get(pk=result.run.pk)) for result in (fast, orm))
    assert fast_row["blocked_by"] == fast_active and orm_row["blocked_by"] == orm_active
    assert fast_row["skip_reason"] == f"run #{fast_active} is queued"
    ignored = {"id", "job", "created_at", "finished_at", "blocked_by", "skip_reason"}
    assert {k: v for k, v in fast_row.items() if k not in ignored} == {
        k: v for k, v in orm_row.items() if k not in ignored
    }
    stored = JobRun.objects.get(pk=fast.run.pk)
    assert abs(stored.finished_at - stored.created_at) < timedelta(seconds=1) and stored.job_id == fast_job.pk
    # What the caller is given (the API answers the 409 from it) is what was stored.
    assert model_to_dict(fast.run) == model_to_dict(stored) and fast.run.job.name == "fast"


@pytest.mark.postgres
def test_it_names_no_active_run_when_it_ended_before_the_skip_was_recorded(make_job):
    job = make_job("nightly")
    skipped = trigger_sql.insert_skipped(job_id=job.pk, triggered_by=API, user_id=None, now=timezone.now())
    stored = JobRun.objects.get(pk=skipped.run_id)
    assert (stored.status, stored.blocked_by_id, stored.skip_reason) == ("skipped", None, "another run was active")


@pytest.mark.postgres
def test_it_finds_and_inserts_in_one_prepared_statement(make_job):
    make_job("nightly")
    now = timezone.now()
    for _ in range(2):
        inserted = trigger_sql.insert_queued(
            name="nightly", triggered_by=API, user_id=None, now=now, dispatched_at=now, task_id="t"
        )
    assert inserted.job.name == "nightly" and inserted.run_id is None  # the second one conflicted
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%INSERT INTO jobs_jobrun%"]
        )
        assert cursor.fetchone()[0] == 1


# --- the background publisher ----------------------------------------------------------------


@pytest.fixture
def send_task_path(monkeypatch):
    """The publisher's send_task path, as on a broker without a message template (the template
    path has tests/surfaces/test_task_message.py)."""
    monkeypatch.setattr(publisher.TaskMessages, "for_app", lambda app, task_name: None)


@pytest.fixture
def sent(monkeypatch, send_task_path):
    calls = []
    monkeypatch.setattr(publisher.current_app, "send_task", lambda name, **kw: calls.append((name, kw)))
    return calls


def test_it_sends_what_was_submitted_before_it_stops(sent):
    background = publisher.Publisher("jobs.tasks.execute_run")
    for run_id in (1, 2, 3):
        background.submit(run_id, task_id=f"t{run_id}", soft_time_limit=10)
    background.stop()
    assert [(kw["args"], kw["task_id"], kw["soft_time_limit"]) for _, kw in sent] == [
        ([1], "t1", 10),
        ([2], "t2", 10),
        ([3], "t3", 10),
    ]
    assert {name for name, _ in sent} == {"jobs.tasks.execute_run"}


def test_it_sends_a_submitted_message_within_its_flush_period_without_being_stopped(sent):
    import time

    background = publisher.Publisher("jobs.tasks.execute_run")
    try:
        background.submit(7, task_id="t7")
        deadline = time.monotonic() + 20 * publisher.FLUSH_SECONDS
        while not sent and time.monotonic() < deadline:
            time.sleep(publisher.FLUSH_SECONDS / 5)
        assert [kw["args"] for _, kw in sent] == [[7]]
    finally:
        background.stop()


@pytest.mark.postgres
def test_it_sends_an_api_trigger_from_the_background_after_commit(
    make_job, monkeypatch, settings, django_capture_on_commit_callbacks
):
    submitted = []
    monkeypatch.setattr(runner._background_publisher, "submit", lambda run_id, **kw: submitted.append((run_id, kw)))
    make_job("nightly", timeout_seconds=30)
    with django_capture_on_commit_callbacks() as on_commit:
        run = run_trigger_by_key(name="nightly", triggered_by=API).run
    assert submitted == []  # nothing leaves before the row is committed
    for callback in on_commit:
        callback()
    grace = settings.JOBS_REAPER_GRACE_SECONDS / 2
    assert submitted == [
        (run.pk, {"task_id": run.celery_task_id, "countdown": None, "soft_time_limit": 30, "time_limit": 30 + grace})
    ]


@pytest.mark.django_db(transaction=True)
def test_it_leaves_runs_of_a_failed_batch_for_process_jobs(make_job, monkeypatch, send_task_path):
    def refuse(name, **kw):
        raise ConnectionError("broker down")

    monkeypatch.setattr(publisher.current_app, "send_task", refuse)
    job = make_job("nightly")
    run = JobRun.objects.create(job=job, triggered_by=API, dispatched_at=timezone.now())
    background = publisher.Publisher("jobs.tasks.execute_run")
    background.submit(run.pk, task_id="t")
    background.stop()
    run.refresh_from_db()
    assert run.status == JobRun.Status.QUEUED and run.dispatched_at is None


# --- the rate count ----------------------------------------------------------------------------


def fresh_address() -> str:
    """A client address no earlier run counted in this window: runs less than a window apart would
    otherwise share a counter key."""
    return ".".join(["10", *(str(byte) for byte in uuid.uuid4().bytes[:3])])


@pytest.mark.redis
def test_it_counts_in_redis_with_one_key_shared_with_django_ratelimit(settings):
    """The one-round-trip count and the library's count are the same counter."""
    settings.RATELIMIT_USE_CACHE = "default"
    settings.JOBS_API_RATE_LIMIT = f"5/{60 + uuid.uuid4().int % 500}s"
    request = RequestFactory().post("/api/jobs/run", REMOTE_ADDR=fresh_address())
    first = get_usage(request, group=guards.RATE_GROUP, key="ip", rate=settings.JOBS_API_RATE_LIMIT, increment=True)
    counts = [guards._api_usage(request)["count"] for _ in range(5)]
    assert first["count"] == 1 and counts == [2, 3, 4, 5, 6]
    limited = guards._api_usage(request)
    assert limited["should_limit"] and 0 < limited["time_left"] <= 560


@pytest.mark.redis
def test_it_adds_a_high_limits_batched_count_to_django_ratelimits_key(settings, monkeypatch):
    """Far from a high limit requests are counted a batch at a time, on the library's key."""
    monkeypatch.setattr(guards, "_counter", rate_counter.RateCounter(clock=lambda: 0.0))
    settings.RATELIMIT_USE_CACHE = "default"
    settings.JOBS_API_RATE_LIMIT = f"{rate_counter.MIN_BATCHED_LIMIT}/m"
    request = RequestFactory().post("/api/jobs/run", REMOTE_ADDR=fresh_address())

    def library_count() -> int:
        return get_usage(request, group=guards.RATE_GROUP, key="ip", rate=settings.JOBS_API_RATE_LIMIT)["count"]

    counts = [guards._api_usage(request)["count"] for _ in range(rate_counter.BATCH)]
    assert counts == list(range(1, rate_counter.BATCH + 1)) and library_count() == 1
    assert guards._api_usage(request)["count"] == library_count() == rate_counter.BATCH + 1
