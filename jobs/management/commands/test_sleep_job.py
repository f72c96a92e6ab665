import subprocess
import time
from pathlib import Path

from jobs.running.command import JobCommand


class Command(JobCommand):
    help = (
        "Development fixture: sleeps --seconds (default 5), then succeeds. With --child-seconds it "
        "first starts `sleep N` in a session of its own, never waited for, and writes its PID to "
        "--child-pid-file: a run's leftover process, to show what a stop or time limit does with it. "
        "--orphan-child starts it through a shell that exits at once, so its parent is gone. "
        "--ignore-cancel sleeps without a progress step and shrugs off any interruption: a command "
        "that never sees its cancel, for the worker to kill."
    )

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--seconds", type=float, default=5.0)
        parser.add_argument("--child-seconds", type=int, default=0)
        parser.add_argument("--child-pid-file", default="")
        parser.add_argument("--orphan-child", action="store_true")
        parser.add_argument("--ignore-cancel", action="store_true")

    def run_job(self, *, now, dry_run, seconds: float = 5.0, child_seconds=0, child_pid_file="", **options) -> dict:
        if child_seconds:
            pid = self.child_start(child_seconds, orphan=options.get("orphan_child", False))
            if child_pid_file:
                Path(child_pid_file).write_text(str(pid))
        if options.get("ignore_cancel"):
            self.sleep_ignoring_cancel(seconds)
            return {"slept_seconds": seconds}
        steps = max(int(seconds * 10), 1)
        for _ in self.progress(range(steps), desc="sleeping"):
            time.sleep(seconds / steps)
        return {"slept_seconds": seconds}

    def sleep_ignoring_cancel(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                time.sleep(0.2)
            except BaseException:  # noqa: S110  the point: a command that ignores being stopped
                pass

    def child_start(self, seconds: int, *, orphan: bool) -> int:
        if orphan:
            shell = f"sleep {int(seconds)} >/dev/null 2>&1 & echo $!"
            return int(subprocess.run(["sh", "-c", shell], capture_output=True, text=True, check=True).stdout)
        return subprocess.Popen(["sleep", str(seconds)], start_new_session=True).pid
