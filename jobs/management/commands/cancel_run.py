"""Cancel a run from the command line: ``manage.py cancel_run RUN_ID --reason ...``.

A queued run, or a chained one waiting for its upstreams, ends cancelled at once and never starts;
a running one is asked to stop and ends cancelled at its next progress step, or is killed by its
worker after JOBS_CANCEL_GRACE_SECONDS.
Like ``runjob``, the machine's own operator acts here: the entry is audited as the command line
(with the login name of whoever ran it), and ``--wait`` waits for the run to end.
"""

from __future__ import annotations

import getpass
import time

from django.core.management.base import BaseCommand, CommandError

from jobs.models import JobRun
from jobs.running.cancels import REASON_LENGTH, cancel_request

WAIT_POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = "Cancel a run: a queued or waiting run never starts, a running one is asked to stop."

    def add_arguments(self, parser) -> None:
        parser.add_argument("run_id", type=int, help="The run's id (as the dashboard and the admin show it).")
        parser.add_argument("--reason", required=True, help=f"Why (at most {REASON_LENGTH} characters).")
        parser.add_argument(
            "--wait", type=float, default=0, metavar="SECONDS", help="Wait up to this long for the run to end."
        )

    def handle(self, *args, run_id: int, reason: str, wait: float, **options) -> None:
        run = JobRun.objects.select_related("job").filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"No run #{run_id}.")
        if not reason.strip():
            raise CommandError("--reason must say why the run is cancelled.")
        result = cancel_request(run=run, who=f"manage.py cancel_run ({_login()})", reason=reason)
        if result.outcome == "ended":
            raise CommandError(result.message)
        self.stdout.write(result.message)
        if result.outcome == "requested" and wait > 0:
            self._wait(run, wait)

    def _wait(self, run: JobRun, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            run.refresh_from_db(fields=["status"])
            if not run.is_active:
                self.stdout.write(f"Run #{run.pk} ended {run.status}.")
                return
            time.sleep(WAIT_POLL_SECONDS)
        raise CommandError(f"Run #{run.pk} is still {run.status} after {seconds:g} s.")


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "unknown user"
