from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from jobs.selectors import job_next_run, jobs_with_active_flag

COLUMNS = ("name", "schedule", "enabled", "status", "last run", "next run", "last duration")


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


class Command(BaseCommand):
    help = "List jobs: schedule in words, enabled, status (idle/running/failed/late/disabled), last and next run."

    def handle(self, *args, **options) -> None:
        now = timezone.now()
        rows = [
            (
                job.name,
                job.schedule_description,
                "yes" if job.enabled else "no",
                job.current_status,
                f"{_when(job.last_run_at)} {job.last_run_status}".strip() if job.last_run_at else "-",
                _when(job_next_run(job, now)),
                f"{job.last_duration.total_seconds():.2f}s" if job.last_duration else "-",
            )
            for job in jobs_with_active_flag(now)
        ]
        widths = [max(len(str(r[i])) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
        line = "  ".join(f"{{:{w}}}" for w in widths)
        self.stdout.write(self.style.MIGRATE_HEADING(line.format(*COLUMNS)))
        for row in rows:
            self.stdout.write(line.format(*row))
        if not rows:
            self.stdout.write("No jobs. Run `manage.py seed_jobs` to register the shipped ones.")
