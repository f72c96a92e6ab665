"""Scenario 4: PostgreSQL restarted while a run is in progress. The run ends (succeeded,
failed or abandoned, and then retried), and the worker and beat recover by themselves:
runs scheduled after the restart succeed with no process restarted.

This test restarts PostgreSQL, so it runs its OWN server (initdb in a temporary folder, a
free port, started and stopped by PID through ``processes``); the shared one is untouched.
Everything (migrate, worker, beat, process-jobs every 3 s) uses that private database.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from tests.process_group import free_port, run_to_end, wait_for, wait_for_log
from tests.services import service_missing

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.processes,
]
FAST = {
    "JOBS_HEARTBEAT_SECONDS": "1",
    "JOBS_HEARTBEAT_TIMEOUT_SECONDS": "6",
    "JOBS_REDISPATCH_AFTER_SECONDS": "5",
}
# The jobs these tests trigger by hand have a slot that cannot come round during a test: a daily
# one (midnight UTC) could pass while beat runs and add a run to those the test follows and counts.
NEVER_DURING_TEST = "0 0 1 1 *"
SETUP = f"""
from jobs.models import Job
Job.objects.create(name="process-jobs", command="process_jobs", interval_seconds=3, timeout_seconds=60)
Job.objects.create(name="ticker", command="test_job", interval_seconds=4, timeout_seconds=60)
Job.objects.create(name="sleeper", command="test_sleep_job", config={{"seconds": 6}}, max_retries=2,
                   retry_backoff_seconds=1, timeout_seconds=60, cron_expression="{NEVER_DURING_TEST}")
"""
TRIGGER = """
from jobs.models import Job
from jobs.running.runner import run_trigger
print("TRIGGER", run_trigger(job=Job.objects.get(name="sleeper"), triggered_by="manual").run.pk)
"""


@pytest.fixture
def private_postgres(processes):
    """A PostgreSQL server of this test's own; ``restart()`` stops it (fast) and starts it again."""
    import psycopg

    if shutil.which("initdb") is None or shutil.which("postgres") is None:
        service_missing("initdb/postgres")
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    folder = tempfile.mkdtemp(prefix="cronhouse-pg-")
    os.chown(folder, owner.pw_uid, owner.pw_gid)
    data = os.path.join(folder, "data")
    port = free_port()
    as_owner = [sys.executable, "-c", _BECOME, str(owner.pw_uid), str(owner.pw_gid)]
    subprocess.run(
        [*as_owner, shutil.which("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = [
        *as_owner,
        shutil.which("postgres"),
        "-D",
        data,
        "-p",
        str(port),
        "-k",
        folder,
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
        "-c",
        "max_connections=60",
    ]
    conninfo = f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2"

    def up() -> bool:
        try:
            with psycopg.connect(conninfo):
                return True
        except psycopg.Error:
            return False

    class Server:
        url = f"postgres://postgres@127.0.0.1:{port}/cronhouse"
        proc = None

        def start(self) -> None:
            self.proc = processes.start("postgres", server)
            wait_for(up, timeout=60, interval=0.2, message="private postgres up")

        def restart(self) -> None:
            processes.kill(self.proc, signal.SIGINT)  # fast shutdown: clients are disconnected
            self.start()

        def query(self, sql: str, params=()):
            with psycopg.connect(self.url.replace("postgres://", "postgresql://")) as conn:
                return conn.execute(sql, params).fetchall()

    pg = Server()
    pg.start()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE DATABASE cronhouse")
    yield pg
    if pg.proc is not None and pg.proc.poll() is None:
        processes.kill(pg.proc, signal.SIGINT)
    shutil.rmtree(folder, ignore_errors=True)


# Drop root for the PostgreSQL binaries (they refuse to run as root), then exec: same PID.
_BECOME = (
    "import os, sys; os.setgroups([]); os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[1])); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


def test_it_recovers_from_a_postgres_restart_during_a_run(processes, private_postgres, redis_broker):
    pg = private_postgres
    env = {"DATABASE_URL": pg.url, **FAST}
    code, out = run_to_end(processes, "migrate", "migrate", "--noinput", timeout=180, **env)
    assert code == 0, out
    assert run_to_end(processes, "setup", "shell", "-c", SETUP, **env)[0] == 0
    processes.worker("worker", **env)
    wait_for_log(processes, "worker", " ready.", timeout=60)
    processes.beat("beat", **env)
    beat_alive = "SELECT count(*) FROM jobs_serviceheartbeat WHERE name = 'beat'"
    wait_for(lambda: pg.query(beat_alive)[0][0] == 1, timeout=60, message="beat leading (heartbeat written)")

    code, out = run_to_end(processes, "trigger", "shell", "-c", TRIGGER, **env)
    run_id = int(out.split("TRIGGER")[1].split()[0])
    status = "SELECT status FROM jobs_jobrun WHERE id = %s"
    wait_for(lambda: pg.query(status, [run_id])[0][0] == "running", timeout=30, message="sleeper running")

    pg.restart()
    restarted_at = pg.query("SELECT now()")[0][0]

    # The interrupted run ends by itself, and the sleeper ends up succeeding (itself or a retry).
    wait_for(lambda: pg.query(status, [run_id])[0][0] != "running", timeout=60, message="interrupted run ended")
    sleeper = "SELECT attempt, status FROM jobs_jobrun r JOIN jobs_job j ON j.id = r.job_id WHERE j.name = %s"
    wait_for(
        lambda: ("succeeded" in {s for _, s in pg.query(sleeper, ["sleeper"])}),
        timeout=60,
        message="sleeper succeeded (directly or by retry)",
    )
    assert pg.query(status, [run_id])[0][0] in {"succeeded", "failed", "abandoned"}

    # Beat and worker recovered without a restart: scheduled runs after the restart succeed.
    after = (
        "SELECT count(*) FROM jobs_jobrun r JOIN jobs_job j ON j.id = r.job_id WHERE j.name = 'ticker' "
        "AND r.status = 'succeeded' AND r.created_at > %s"
    )
    wait_for(lambda: pg.query(after, [restarted_at])[0][0] >= 2, timeout=30, message="ticker runs after restart")
    stuck = "SELECT count(*) FROM jobs_jobrun WHERE status = 'running' AND heartbeat_at < now() - interval '10 s'"
    assert pg.query(stuck)[0][0] == 0


# --- a restart must neither run a job twice nor leave a trigger waiting --------------------------

COUNTED = """
from jobs.models import Job
for name in ("counted", "counted-b"):
    Job.objects.create(name=name, command="test_count_job", config={{"file": "{folder}/" + name, "seconds": {seconds}}},
                       cron_expression="{never}", max_retries=2, retry_backoff_seconds=1, timeout_seconds=60)
"""
TRIGGER_COUNTED = """
from jobs.models import Job
from jobs.running.runner import run_trigger
for name in {names!r}:
    print("TRIGGER", run_trigger(job=Job.objects.get(name=name), triggered_by="manual").run.pk)
"""
RUN = "SELECT status, started_at - created_at FROM jobs_jobrun WHERE id = %s"


def _prepare(processes, pg, tmp_path, seconds: float, **env) -> dict:
    env = {"DATABASE_URL": pg.url, **env}
    code, out = run_to_end(processes, "migrate", "migrate", "--noinput", timeout=180, **env)
    assert code == 0, out
    setup = COUNTED.format(folder=tmp_path, seconds=seconds, never=NEVER_DURING_TEST)
    assert run_to_end(processes, "setup", "shell", "-c", setup, **env)[0] == 0
    processes.worker("worker", **env)
    wait_for_log(processes, "worker", " ready.", timeout=60)
    return env


def _trigger(processes, env, *names: str) -> list[int]:
    code, out = run_to_end(processes, "trigger", "shell", "-c", TRIGGER_COUNTED.format(names=names), **env)
    assert code == 0, out
    return [int(line.split()[1]) for line in out.splitlines() if line.startswith("TRIGGER ")][-len(names) :]


def test_it_runs_a_job_once_and_records_its_success_across_a_postgres_restart(
    processes, private_postgres, redis_broker, tmp_path
):
    """The job finishes after the restart, on a worker whose connection died: its outcome is
    still recorded, the reaper (beat's sweep every few seconds) never abandons it meanwhile,
    and no retry runs its work a second time."""
    pg = private_postgres
    env = _prepare(processes, pg, tmp_path, seconds=10, **FAST)
    processes.beat("beat", **env)
    beat_alive = "SELECT count(*) FROM jobs_serviceheartbeat WHERE name = 'beat'"
    wait_for(lambda: pg.query(beat_alive)[0][0] == 1, timeout=60, message="beat leading (heartbeat written)")

    [run_id] = _trigger(processes, env, "counted")
    wait_for(lambda: pg.query(RUN, [run_id])[0][0] == "running", timeout=30, message="counted running")
    pg.restart()

    wait_for(lambda: pg.query(RUN, [run_id])[0][0] != "running", timeout=40, message="the run ended")
    assert pg.query(RUN, [run_id])[0][0] == "succeeded"
    runs = "SELECT count(*) FROM jobs_jobrun r JOIN jobs_job j ON j.id = r.job_id WHERE j.name = 'counted'"
    assert pg.query(runs)[0][0] == 1
    assert len((tmp_path / "counted").read_text().splitlines()) == 1


def test_it_starts_the_next_run_at_once_after_a_postgres_restart_while_the_worker_idles(
    processes, private_postgres, redis_broker, tmp_path
):
    """Both pool processes hold a connection the restart kills; the next task's claim reconnects
    instead of leaving its run queued for process-jobs' re-send (there is no beat here at all)."""
    pg = private_postgres
    env = _prepare(processes, pg, tmp_path, seconds=1.5)
    first = _trigger(processes, env, "counted", "counted-b")  # one per pool process: both connect
    done = "SELECT count(*) FROM jobs_jobrun WHERE status = 'succeeded' AND id = ANY(%s)"
    wait_for(lambda: pg.query(done, [first])[0][0] == 2, timeout=30, message="both first runs succeeded")

    pg.restart()
    [run_id] = _trigger(processes, env, "counted")

    wait_for(lambda: pg.query(RUN, [run_id])[0][0] == "succeeded", timeout=20, message="the run after the restart")
    assert pg.query(RUN, [run_id])[0][1].total_seconds() < 5
    assert len((tmp_path / "counted").read_text().splitlines()) == 2
