"""Run Cronhouse on this machine: migrate, seed, an admin login, a worker with beat, the web UI."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

ADMIN_USERNAME = "admin"


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


def _exit_on_sigterm(signum, frame):
    raise SystemExit(0)


class Command(BaseCommand):
    help = "Start the embedded Cronhouse: web UI on 127.0.0.1:8000 plus a Celery worker with beat."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, addrport: str, concurrency: int, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_jobs", with_fixtures=True, verbosity=0)
        if "seed_demo" in get_commands():
            # A newcomer sees real data, real runs and a real statement PDF at once. By name, so
            # the jobs app imports no domain app; seed_demo is idempotent.
            call_command("seed_demo", size="small", run_jobs=True, verbosity=1)
        password, valid = local_admin_password()
        url = f"http://{addrport}/admin/"
        login = f"{ADMIN_USERNAME} / {password}" if valid else f"{ADMIN_USERNAME} (password changed since first start)"
        self.stdout.write(self.style.SUCCESS(f"\nCronhouse is starting: {url}\nLog in as {login}\n"))
        worker = subprocess.Popen(
            [
                sys.executable,
                *"-m celery -A config worker".split(),
                "--beat",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
            ],
            cwd=settings.BASE_DIR,
        )
        # SIGTERM (a supervisor, `kill`) must stop the worker too, not orphan it.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            # DEBUG stays off unless asked for (DEBUG=true); the admin's CSS and scripts are
            # served either way, as runserver --insecure does.
            call_command("runserver", addrport, use_reloader=False, insecure_serving=True)
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
