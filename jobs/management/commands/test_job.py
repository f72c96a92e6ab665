from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Development fixture: succeeds at once and reports what it was asked (with --warn, succeeds with warnings)."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--warn", nargs="+", default=[], help="Warnings to record on the run.")
        parser.add_argument("--report", default="", help="Text to put in the summary as it is (a careless report).")

    def run_job(self, *, now, dry_run, warn=(), report="", **options) -> dict:
        self.stdout.write(f"test-job ran as of {now.isoformat()}")
        for text in warn:
            self.warn(text)
        return {"ok": True, "as_of": now.isoformat(), **({"report": [report], report: 1} if report else {})}
