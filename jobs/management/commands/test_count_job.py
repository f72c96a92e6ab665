import time
from pathlib import Path

from jobs.running.command import JobCommand


class Command(JobCommand):
    help = (
        "Test fixture: appends one line to --file as it starts (outside the database, so a test can "
        "count how often the job's work ran), sleeps --seconds (default 0), then succeeds."
    )

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--file", required=True)
        parser.add_argument("--seconds", type=float, default=0.0)

    def run_job(self, *, now, dry_run, file: str, seconds: float = 0.0, **options) -> dict:
        with Path(file).open("a") as out:
            out.write(f"ran as of {now.isoformat()}\n")
        time.sleep(seconds)
        return {"slept_seconds": seconds}
