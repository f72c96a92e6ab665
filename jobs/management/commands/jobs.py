from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from jobs.formatting import format_datetime, format_duration
from jobs.selectors import job_rows

COLUMNS = ("name", "schedule", "enabled", "status", "last run", "next run", "last duration")


class Command(BaseCommand):
    help = "List jobs: schedule in words, enabled, status (idle/running/failed/late/disabled), last and next run."

    def handle(self, *args, **options) -> None:
        now = timezone.now()
        rows = [
            (
                row.job.name,
                row.job.schedule_description,
                "yes" if row.job.enabled else "no",
                row.status,
                f"{format_datetime(row.job.last_run_at)} {row.job.last_run_status}" if row.job.last_run_at else "-",
                "never fires" if row.schedule_problem else format_datetime(row.next_run),
                format_duration(row.job.last_duration),
            )
            for row in job_rows(now=now, recent_per_job=0)
        ]
        widths = [max(len(str(r[i])) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
        line = "  ".join(f"{{:{w}}}" for w in widths)
        self.stdout.write(self.style.MIGRATE_HEADING(line.format(*COLUMNS)))
        for row in rows:
            self.stdout.write(line.format(*row))
        if not rows:
            self.stdout.write("No jobs. Run `manage.py seed_jobs` to register the shipped ones.")
