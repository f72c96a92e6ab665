from django.conf import settings

from jobs.running.command import JobCommand
from notifications.channels.sending import alert_deliveries_sweep
from notifications.email.mailer import notifications_due_count, notifications_process


class Command(JobCommand):
    help = (
        "Send due chat and incident alerts, then queued e-mail: claim due messages (SKIP LOCKED), "
        "send them, record sent / error."
    )

    def add_job_arguments(self, parser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help=f"Messages per claim (default {settings.NOTIFICATIONS_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--max-seconds",
            type=float,
            default=None,
            help=f"Stop claiming after this long (default {settings.NOTIFICATIONS_DRAIN_SECONDS}); 0 = one batch.",
        )
        parser.add_argument("--until-empty", action="store_true", help="Drain until nothing is due, however long.")

    def handle(self, *args, **options) -> None:
        self.clock_pinned = bool(options.get("as_of"))
        super().handle(*args, **options)

    def run_job(self, *, now, dry_run, batch_size=None, max_seconds=None, until_empty=False, **options) -> dict:
        if dry_run:
            return {"due": notifications_due_count(now=now)}
        # Chat and incident alerts first, and whatever the mail server does: they are how staff
        # hear about trouble while it is down.
        alerts = alert_deliveries_sweep(now=now if self.clock_pinned else None)
        # --as-of pins the clock for the whole drain; otherwise each batch reads the clock.
        result = notifications_process(
            now=now if self.clock_pinned else None,
            batch_size=batch_size,
            max_seconds=float("inf") if until_empty else max_seconds,
        )
        if result.unreachable:
            # Not a failure (each message backs off and is retried), but not a success either.
            self.warn(f"mail server refused/unreachable: {result.deferred} messages deferred ({result.unreachable})")
        return {**result.summary(), "alert_deliveries": alerts}
