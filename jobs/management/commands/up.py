"""Run Cronhouse on this machine: migrate, seed, an admin login, a worker with beat, the web UI.

The terminal ends with one banner (where to open, how to log in, where e-mails and logs go, how
to stop) and stays quiet after it: the web server and the worker write to files in var/log/,
e-mails go to var/mail/ (config/settings.py). Should either process stop, `up` says so with the
end of its log, stops the other and exits 1.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError

from jobs.catalog.validation import configured_queues
from jobs.running.process_tree import descendants, processes_end

ADMIN_USERNAME = "admin"
STARTUP_TIMEOUT_SECONDS = 120
# Beyond the run grace: the worker records the stopped run and exits.
STOP_TIMEOUT_SECONDS = 15


def local_admin_password() -> tuple[str, bool]:
    """The local admin's password, made once and kept in var/ (never in the repo).

    Returns (password, still_valid): an admin who changed it gets told so instead.
    """
    path = settings.VAR_DIR / "admin-password"
    User = get_user_model()
    user = User.objects.filter(username=ADMIN_USERNAME).first()
    if user is None:
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(ADMIN_USERNAME, "admin@localhost", password)
        path.write_text(password)
        path.chmod(0o600)
        return password, True
    password = path.read_text().strip() if path.exists() else ""
    return password, bool(password) and user.check_password(password)


def host_and_port(addrport: str) -> tuple[str, int]:
    """runserver's ``[addr:]port`` as (host, port); no address means 127.0.0.1."""
    host, _, port = addrport.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As runserver binds: a port left in TIME_WAIT by the last start is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def answers(host: str, port: int) -> bool:
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    try:
        socket.create_connection((reachable, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def shown(path: Path) -> str:
    """``path`` as short as it stays unambiguous: relative to the current folder when inside it."""
    try:
        return f"{path.resolve().relative_to(Path.cwd())}/"
    except ValueError:
        return f"{path}/"


def log_tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _exit_on_signal(signum, frame):
    raise SystemExit(0)


class Command(BaseCommand):
    help = "Start the embedded Cronhouse: web UI on 127.0.0.1:8000 plus a Celery worker with beat."
    # The checks run in handle(), once the admin exists: a first start would otherwise warn that
    # alerts have no recipient a moment before it creates one.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, addrport: str, concurrency: int, **options) -> None:
        host, port = host_and_port(addrport)
        # The children (and seed_demo) find this server at SITE_URL: its links, and the embedded
        # demo's stand-ins (config/settings.py), are on the port it serves.
        if host in ("127.0.0.1", "localhost"):
            os.environ.setdefault("SITE_URL", f"http://{host}:{port}")
        if port_taken(host, port):
            raise CommandError(f"{host}:{port} is in use; start with --addrport 127.0.0.1:<another port>.")
        logs = settings.VAR_DIR / "log"
        logs.mkdir(exist_ok=True)
        password = self.prepare(logs)
        # SIGTERM (a supervisor, `kill`) and a closed terminal stop the children too, not orphan them.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        signal.signal(signal.SIGHUP, _exit_on_signal)
        # The one worker takes every queue a job may name (the default and JOBS_QUEUES).
        worker = [*"-m celery -A config worker --beat --loglevel INFO --concurrency".split(), str(concurrency)]
        worker += ["-Q", ",".join(configured_queues())]
        # DEBUG stays off unless asked for (DEBUG=true); the admin's CSS and scripts are served
        # either way (--insecure).
        web = ["manage.py", "runserver", addrport, "--noreload", "--insecure", "--skip-checks"]
        children: dict[str, tuple[subprocess.Popen, Path]] = {}
        try:
            for name, log, argv in [("worker", logs / "worker.log", worker), ("web server", logs / "web.log", web)]:
                children[name] = (self.start(log, *argv), log)
            self.wait_until_answering(host, port, children)
            self.demo(logs)
            self.stdout.write(self.banner(f"http://{host}:{port}", password, logs))
            self.stdout.flush()  # the banner must show now, also through a pipe
            self.watch(children)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop([proc for proc, _ in children.values()])

    def prepare(self, logs: Path) -> str | None:
        """Migrate, register the jobs, the admin login, demo data; the admin's password, if still valid."""
        call_command("migrate", interactive=False, verbosity=0)
        # Not the test fixtures: test-fail-job would fail every hour on a fresh install.
        call_command("seed_jobs", verbosity=0)
        password, valid = local_admin_password()
        self.check()  # real configuration warnings, before the banner
        return password if valid else None

    def demo(self, logs: Path) -> None:
        """A newcomer sees real data, real runs and a real statement PDF at once. seed_demo finds
        each app's demo module, is idempotent, and runs in its own process so the runs it makes
        log to its file rather than to this terminal. It runs once the web server answers: the
        demo's stand-ins for Stripe and the API providers are served there (accounts.demo_services)."""
        if "seed_demo" in get_commands():
            self.run_step(logs / "setup.log", "manage.py", "seed_demo", "--size", "small", "--run-jobs")

    def stop(self, procs: list[subprocess.Popen]) -> None:
        """Stop the web server and the worker with every process below them (docs/operations.md
        "Stopping"): SIGTERM, the worker's grace for runs in flight, then SIGKILL for what is left.

        The worker's main process alone gets SIGTERM: Celery's warm shutdown stops its beat
        (which gives up the leader lease) and lets a running run finish within
        JOBS_STOP_GRACE_SECONDS (jobs.tasks). Its whole group would also hit the pool process
        and the run's own processes at once, with no grace. A second Ctrl-C skips the wait.
        """
        live = [proc for proc in procs if proc.poll() is None]
        if live:
            grace = settings.JOBS_STOP_GRACE_SECONDS
            self.stdout.write(f"Stopping (runs in flight get {grace:g} s; Ctrl-C again: now)")
            self.stdout.flush()
        for proc in live:
            with suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + settings.JOBS_STOP_GRACE_SECONDS + STOP_TIMEOUT_SECONDS
        try:
            for proc in live:
                try:
                    proc.wait(timeout=max(deadline - time.monotonic(), 0))
                except subprocess.TimeoutExpired:
                    pass
        except (KeyboardInterrupt, SystemExit):
            pass
        for proc in procs:  # one that exited on its own may have left its group behind
            self.kill_tree(proc)

    def kill_tree(self, proc: subprocess.Popen) -> None:
        """SIGKILL the process, its process group and every process below it by parent chain
        (one that left the group with setsid too), then reap it."""
        below = descendants(proc.pid)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the group's id is its PID
        processes_end(below, grace=0)
        with suppress(ProcessLookupError):
            proc.kill()
        proc.wait()

    def run_step(self, log: Path, *argv: str) -> None:
        with log.open("ab") as out:
            done = subprocess.run(
                [sys.executable, *argv, "--skip-checks"],
                cwd=settings.BASE_DIR,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if done.returncode:
            raise CommandError(f"{' '.join(argv)} failed (exit {done.returncode}); {log}:\n{log_tail(log)}")

    def start(self, log: Path, *argv: str) -> subprocess.Popen:
        with log.open("ab") as out:
            # Its own session: Ctrl-C reaches `up` alone, which then stops each child once, cleanly.
            return subprocess.Popen(
                [sys.executable, *argv],
                cwd=settings.BASE_DIR,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def wait_until_answering(self, host: str, port: int, children: dict) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not answers(host, port):
            self.fail_if_stopped(children)
            if time.monotonic() > deadline:
                raise CommandError(
                    f"The web server did not answer on {host}:{port} within {STARTUP_TIMEOUT_SECONDS} s."
                )
            time.sleep(0.2)

    def watch(self, children: dict) -> None:
        while True:
            self.fail_if_stopped(children)
            time.sleep(0.5)

    def fail_if_stopped(self, children: dict) -> None:
        for name, (proc, log) in children.items():
            if proc.poll() is not None:
                raise CommandError(f"The {name} stopped (exit {proc.returncode}); the end of {log}:\n{log_tail(log)}")

    def banner(self, base: str, password: str | None, logs: Path) -> str:
        login = (
            f"{ADMIN_USERNAME} / {password}" if password else f"{ADMIN_USERNAME} (password changed since first start)"
        )
        where = f"Logs: {shown(logs)} (web.log, worker.log)"
        if settings.EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend":
            where = f"E-mails: {shown(Path(settings.EMAIL_FILE_PATH))}   {where}"
        running = self.style.SUCCESS(f"Cronhouse is running: {base}/admin/   (dashboard: {base}/dashboard/)")
        return "\n".join(["", running, f"  Log in as {login}", f"  {where}", "  Stop: press Ctrl-C"])
