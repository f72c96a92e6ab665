import time

from jobs.command import JobCommand


class Command(JobCommand):
    help = "Development fixture: sleeps --seconds (default 5), then succeeds."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--seconds", type=float, default=5.0)

    def run_job(self, *, now, dry_run, seconds: float = 5.0, **options) -> dict:
        steps = max(int(seconds * 10), 1)
        for _ in self.progress(range(steps), desc="sleeping"):
            time.sleep(seconds / steps)
        return {"slept_seconds": seconds}
