import time

from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Development fixture: works through --items items (2,000), --delay seconds each, with a progress bar."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--items", type=int, default=2000)
        parser.add_argument("--delay", type=float, default=0.002)

    def run_job(self, *, now, dry_run, items, delay, **options) -> dict:
        done = 0
        for _ in self.progress(range(items)):
            time.sleep(delay)
            done += 1
        return {"done": done}
