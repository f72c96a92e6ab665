import subprocess
import time
from pathlib import Path

from jobs.command import JobCommand


class Command(JobCommand):
    help = (
        "Development fixture: sleeps --seconds (default 5), then succeeds. With --child-seconds it "
        "first starts `sleep N` in a session of its own, never waited for, and writes its PID to "
        "--child-pid-file: a run's leftover process, to show what a stop or time limit does with it."
    )

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--seconds", type=float, default=5.0)
        parser.add_argument("--child-seconds", type=int, default=0)
        parser.add_argument("--child-pid-file", default="")

    def run_job(self, *, now, dry_run, seconds: float = 5.0, child_seconds=0, child_pid_file="", **options) -> dict:
        if child_seconds:
            child = subprocess.Popen(["sleep", str(child_seconds)], start_new_session=True)
            if child_pid_file:
                Path(child_pid_file).write_text(str(child.pid))
        steps = max(int(seconds * 10), 1)
        for _ in self.progress(range(steps), desc="sleeping"):
            time.sleep(seconds / steps)
        return {"slept_seconds": seconds}
