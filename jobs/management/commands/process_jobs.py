from jobs.running.command import JobCommand
from jobs.running.maintenance import jobs_process


class Command(JobCommand):
    help = "Dispatch queued runs whose message was lost and abandon runs whose worker is gone."

    def run_job(self, *, now, dry_run, **options) -> dict:
        if dry_run:
            from jobs.running.maintenance import runs_to_dispatch, runs_to_reap

            return {"would_abandon": len(runs_to_reap(now)), "would_dispatch": runs_to_dispatch(now).count()}
        return jobs_process(now=now)
