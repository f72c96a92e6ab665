"""Single-statement versions of the two hottest runner steps, for PostgreSQL.

A no-op run through the ORM costs a handful of statements; at hundreds of runs a second
that bookkeeping, not the job, bounds throughput. PostgreSQL can claim a run and read its
job in one data-modifying CTE, and end a run and update its job's statistics in another.
Each statement is atomic on its own. Other databases use the ORM path in runner.py.

Both are server-side prepared (parsed and planned once per connection): planning the claim's
CTE cost PostgreSQL more CPU than executing it. The claim commits asynchronously, the finish
durably; see ``_CLAIM``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections

from .models import Job, JobRun

RUN_FIELDS = JobRun._meta.concrete_fields
JOB_FIELDS = Job._meta.concrete_fields


def default_database():
    # The wrapper itself: every attribute read through django.db.connection (a proxy) looks
    # the connection up again in a context-local store, several times per run.
    return connections[DEFAULT_DB_ALIAS]


def applies() -> bool:
    return default_database().vendor == "postgresql"


# A threshold no statement reaches: psycopg then prepares only what asks with prepare=True.
_ONLY_WHEN_ASKED = 2**31


def prepares(db) -> bool:
    """Whether this connection may hold server-side prepared statements.

    Not behind a transaction-pooling PgBouncer: Django's documented setting for one,
    DISABLE_SERVER_SIDE_CURSORS, or an explicit ``OPTIONS["prepare_threshold"] = None``
    turns preparing off (a pooled server connection may not hold the statement).
    """
    settings_dict = db.settings_dict
    options = settings_dict.get("OPTIONS", {})
    explicitly_off = "prepare_threshold" in options and options["prepare_threshold"] is None
    return not (settings_dict.get("DISABLE_SERVER_SIDE_CURSORS") or explicitly_off)


@contextmanager
def prepared_cursor(db) -> Iterator[psycopg.Cursor]:
    """A server-binding cursor on Django's connection: these two statements run hundreds of
    times a second, so PostgreSQL keeps their plans (``prepare=True``) instead of parsing
    and planning each call as Django's client-side binding would."""
    db.ensure_connection()
    raw = db.connection
    if raw.prepare_threshold is not None or not prepares(db):
        # The project set psycopg's preparing itself, or turned it off for a pooler.
        with psycopg.Cursor(raw) as cursor:
            yield cursor
        return
    # Django opens psycopg connections with prepare_threshold=None, and psycopg then ignores
    # prepare=True too (measured: pg_prepared_statements stayed empty). A threshold no
    # statement reaches, only while ours runs: psycopg keeps what it prepared across the
    # change, and Django's own queries are not even counted.
    raw.prepare_threshold = _ONLY_WHEN_ASKED
    try:
        with psycopg.Cursor(raw) as cursor:
            yield cursor
    finally:
        raw.prepare_threshold = None


def _columns(alias: str, fields) -> str:
    return ", ".join(f'{alias}."{f.column}"' for f in fields)


def _converters(fields) -> list[tuple[int, object]]:
    """(position, from_db_value) of the fields that convert what psycopg returns (JSON)."""
    return [(i, f.from_db_value) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]


RUN_ATTNAMES, RUN_CONVERTERS = [f.attname for f in RUN_FIELDS], _converters(RUN_FIELDS)
JOB_ATTNAMES, JOB_CONVERTERS = [f.attname for f in JOB_FIELDS], _converters(JOB_FIELDS)


def _instance(db, model, attnames, converters, values):
    values = list(values)
    for i, from_db in converters:
        if values[i] is not None:
            values[i] = from_db(values[i], None, db)
    return model.from_db(db.alias, attnames, values)


# The claim's commit does not wait for its WAL flush. synchronous_commit is read when a
# transaction commits, so set_config(..., is_local => true) covers this statement's own
# transaction and the session keeps the server's setting. Only when the statement is its own
# transaction (the worker, runjob): inside a caller's atomic block it would also cover the
# rest of that block, so there the setting is left as it is.
#
# Losing the claim is safe. Only a PostgreSQL crash can lose it; the run is then back to
# ``queued`` with its message consumed, process-jobs re-sends it after
# JOBS_REDISPATCH_AFTER_SECONDS, and it runs again, much as it would be retried or abandoned
# had the claim survived (the worker's finish fails on the dead connection either way). A
# queued run is never lost, and the durable finish flushes the WAL up to and including the
# claim before it answers, so a finished run never reverts. The one-active-run and
# one-run-per-slot constraints are checked as rows are written, not at flush.
_CLAIM = f"""
WITH claimed AS (
    UPDATE jobs_jobrun
       SET status = 'running', started_at = %(now)s, heartbeat_at = %(now)s,
           worker_host = %(host)s, worker_pid = %(pid)s
     WHERE id = %(run_id)s AND status = 'queued'
       AND (not_before IS NULL OR not_before <= %(due)s)
 RETURNING *
)
SELECT {_columns("claimed", RUN_FIELDS)}, {_columns("j", JOB_FIELDS)},
       set_config('synchronous_commit',
                  CASE WHEN %(own_transaction)s THEN 'off' ELSE current_setting('synchronous_commit') END,
                  true)
  FROM claimed JOIN jobs_job j ON j.id = claimed.job_id
"""


def _claim_row(db, params: dict) -> tuple | None:
    """The claimed run's and job's columns, then the synchronous_commit its commit used."""
    with prepared_cursor(db) as cursor:
        own_transaction = cursor.connection.autocommit  # Django turns it off inside atomic()
        cursor.execute(_CLAIM, {**params, "own_transaction": own_transaction}, prepare=True)
        return cursor.fetchone()


def claim(*, run_id: int, now: datetime, due: datetime, host: str, pid: int) -> JobRun | None:
    db = default_database()
    row = _claim_row(db, {"run_id": run_id, "now": now, "due": due, "host": host, "pid": pid})
    if row is None:
        return None
    run = _instance(db, JobRun, RUN_ATTNAMES, RUN_CONVERTERS, row[: len(RUN_FIELDS)])
    run.job = _instance(db, Job, JOB_ATTNAMES, JOB_CONVERTERS, row[len(RUN_FIELDS) : len(RUN_FIELDS) + len(JOB_FIELDS)])
    return run


_SUMMARY_FIELD = JobRun._meta.get_field("summary")

_FINISH_SUCCESS = """
WITH ended AS (
    UPDATE jobs_jobrun
       SET status = 'succeeded', finished_at = %(finished_at)s, duration = %(duration)s,
           summary = %(summary)s, output = %(output)s, error = ''
     WHERE id = %(run_id)s AND status = 'running'
 RETURNING job_id
)
UPDATE jobs_job
   SET last_run_at = %(started_at)s, last_run_status = 'succeeded', last_duration = %(duration)s,
       last_success_at = %(finished_at)s, consecutive_failures = 0
  FROM ended
 WHERE jobs_job.id = ended.job_id
RETURNING jobs_job.alert_state
"""


def finish_success(*, run: JobRun, finished_at: datetime, summary: dict, output: str) -> str | None:
    """End a running run as succeeded and update its job; the job's alert state, or None if
    the run was no longer running (reaped meanwhile)."""
    db = default_database()
    params = {
        "run_id": run.pk,
        "started_at": run.started_at,
        "finished_at": finished_at,
        "duration": finished_at - run.started_at,
        "summary": _SUMMARY_FIELD.get_db_prep_value(summary, db),
        "output": output,
    }
    with prepared_cursor(db) as cursor:
        cursor.execute(_FINISH_SUCCESS, params, prepare=True)
        row = cursor.fetchone()
    return row[0] if row else None
