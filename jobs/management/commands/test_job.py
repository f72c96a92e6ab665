from jobs.command import JobCommand


class Command(JobCommand):
    help = "Development fixture: succeeds at once and reports what it was asked."

    def run_job(self, *, now, dry_run, **options) -> dict:
        self.stdout.write(f"test-job ran as of {now.isoformat()}")
        return {"ok": True, "as_of": now.isoformat()}
