from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from jobs.formatting import format_datetime, format_duration
from jobs.selectors import job_rows

COLUMNS = ("name", "schedule", "enabled", "status", "last run", "next run", "last duration")


class Command(BaseCommand):
    help = (
        "List jobs: schedule in words, enabled, status (idle/running/failed/late/disabled), last and next run; "
        "then the warnings of each last run that succeeded with warnings."
    )

    def handle(self, *args, **options) -> None:
        now = timezone.now()
        job_list = job_rows(now=now, recent_per_job=0)
        rows = [
            (
                row.job.name,
                row.job.schedule_description,
                "yes" if row.job.enabled else "no",
                row.status,
                f"{format_datetime(row.job.last_run_at)} {row.last_run_text}" if row.job.last_run_at else "-",
                "never fires" if row.schedule_problem else format_datetime(row.next_run),
                format_duration(row.job.last_duration),
            )
            for row in job_list
        ]
        widths = [max(len(str(r[i])) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
        line = "  ".join(f"{{:{w}}}" for w in widths)
        self.stdout.write(self.style.MIGRATE_HEADING(line.format(*COLUMNS)))
        for row in rows:
            self.stdout.write(line.format(*row))
        if not rows:
            self.stdout.write("No jobs. Run `manage.py seed_jobs` to register the shipped ones.")
        warned = [row for row in job_list if row.warnings]
        if warned:
            self.stdout.write(self.style.WARNING("\nLast runs that succeeded with warnings:"))
        for row in warned:
            for warning in row.warnings:
                self.stdout.write(f"{row.job.name}: {warning}")
