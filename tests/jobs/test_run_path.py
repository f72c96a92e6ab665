"""The worker's hot path: prepared claim/finish, the claim's asynchronous commit, the run
table's indexes, the cached command parsers."""

import io
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from jobs import run_sql
from jobs.execution import _parsers, run_management_command
from jobs.maintenance import runs_sweep
from jobs.models import JobRun
from jobs.runner import run_execute, run_trigger

pytestmark = pytest.mark.django_db
Status = JobRun.Status


def trigger(job):
    return run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run


def claim_params(run):
    now = timezone.now()
    return {"run_id": run.pk, "now": now, "due": now, "host": "test", "pid": 1}


def session_setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_it_prepares_the_claim_and_finish_once_per_connection(make_job):
    run_execute(trigger(make_job("first")).pk)
    run_execute(trigger(make_job("second")).pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0].strip() for row in cursor.fetchall()]
    # Ours only (Django's own queries stay unprepared), each prepared once.
    assert sorted(statement.split()[:2] for statement in statements) == [["WITH", "claimed"], ["WITH", "ended"]]


@pytest.mark.postgres
def test_it_leaves_preparing_off_where_django_is_told_of_a_transaction_pooler():
    db = connection
    original = dict(db.settings_dict)
    try:
        db.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True
        assert not run_sql.prepares(db)
        db.settings_dict.update(
            DISABLE_SERVER_SIDE_CURSORS=False, OPTIONS={**original["OPTIONS"], "prepare_threshold": None}
        )
        assert not run_sql.prepares(db)
    finally:
        db.settings_dict.clear()
        db.settings_dict.update(original)
    assert run_sql.prepares(db)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_commits_a_claim_without_waiting_for_the_flush_only_as_its_own_transaction(make_job):
    server_setting = session_setting("synchronous_commit")
    run = trigger(make_job())
    row = run_sql._claim_row(connection, claim_params(run))
    assert row[-1] == "off"
    # The session (and so the finish, which must be durable) keeps the server's setting.
    assert session_setting("synchronous_commit") == server_setting
    assert JobRun.objects.get(pk=run.pk).status == Status.RUNNING


@pytest.mark.postgres
def test_it_does_not_relax_a_callers_transaction_when_claiming_inside_it(make_job):
    run = trigger(make_job())
    server_setting = session_setting("synchronous_commit")
    with transaction.atomic():
        row = run_sql._claim_row(connection, claim_params(run))
        assert row[-1] == server_setting
        assert session_setting("synchronous_commit") == server_setting


def index_columns() -> dict[str, tuple[list[str], bool]]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, JobRun._meta.db_table)
    return {name: (info["columns"], info["unique"]) for name, info in found.items() if info["index"]}


def test_it_keeps_the_invariant_indexes_and_drops_the_redundant_ones():
    indexes = index_columns()
    assert indexes["jobs_jobrun_one_active_per_job"] == (["job_id"], True)
    assert indexes["jobs_jobrun_one_run_per_slot"] == (["job_id", "scheduled_for", "attempt"], True)
    assert indexes["jobs_jobrun_one_retry_per_run"] == (["retry_of_id"], True)
    assert indexes["jobs_jobrun_job_created"][0][0] == "job_id"
    # job_id's own index and retry_of's full unique index are gone: each index is written on
    # every status change of every run.
    on_job_alone = [name for name, (columns, _) in indexes.items() if columns == ["job_id"]]
    assert on_job_alone == ["jobs_jobrun_one_active_per_job"]
    assert [name for name, (columns, _) in indexes.items() if columns == ["retry_of_id"]] == [
        "jobs_jobrun_one_retry_per_run"
    ]


def test_it_allows_one_retry_per_run(make_job):
    job = make_job()
    failed = JobRun.objects.create(job=job, triggered_by=JobRun.Trigger.MANUAL, status=Status.FAILED)
    JobRun.objects.create(job=job, triggered_by=JobRun.Trigger.RETRY, status=Status.FAILED, retry_of=failed, attempt=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        JobRun.objects.create(job=job, triggered_by=JobRun.Trigger.RETRY, status=Status.QUEUED, retry_of=failed)


def test_it_counts_reaped_runs_without_a_retry_as_not_retried(make_job):
    job = make_job(max_retries=0)
    long_ago = timezone.now() - timedelta(hours=3)
    JobRun.objects.create(
        job=job, triggered_by=JobRun.Trigger.MANUAL, status=Status.RUNNING, started_at=long_ago, heartbeat_at=long_ago
    )
    result = runs_sweep(now=timezone.now())
    assert (result["abandoned"], result["retried"]) == (1, 0)


def test_it_keeps_each_runs_options_out_of_the_cached_parse():
    out = io.StringIO()
    first = run_management_command("test_sleep_job", [], {"seconds": 0.01}, stdout=out, stderr=out)
    second = run_management_command("test_sleep_job", ["--seconds", "0.02"], {}, stdout=out, stderr=out)
    assert first["slept_seconds"] == 0.01 and second["slept_seconds"] == 0.02
    assert _parsers["test_sleep_job"].no_argv_values["seconds"] == 5.0
