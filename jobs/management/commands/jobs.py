from __future__ import annotations

from itertools import islice

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.formatting import format_datetime, format_duration
from jobs.models import Job
from jobs.status.listing import PAUSED_OLD_NAME, STATUSES, JobFilters, jobs_filtered
from jobs.status.rows import JobRow, job_rows

COLUMNS = ("name", "schedule", "paused", "status", "last run", "next run", "last duration")
# Jobs read and printed at a time: memory stays flat however many jobs --limit 0 lists.
BATCH = 500


class Command(BaseCommand):
    help = (
        "List jobs, failing and late first: schedule in words, paused, status "
        f"({'/'.join(STATUSES)}), last and next run; then the warnings of each last run that succeeded "
        "with warnings. Filters as on the dashboard; the first 50 unless --limit says otherwise."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--status", choices=(*STATUSES, PAUSED_OLD_NAME), default="", help="Only jobs with this status."
        )
        parser.add_argument("--search", default="", help="Only jobs whose name or description contains this text.")
        parser.add_argument("--app", default="", help="Only jobs of this app (billing, accounts, webhooks, ...).")
        parser.add_argument("--limit", type=int, default=50, help="At most this many jobs (0: all, streamed).")

    def handle(self, *args, **options) -> None:
        if options["limit"] < 0:
            raise CommandError("--limit must be 0 (all) or more.")
        now = timezone.now()
        status = "paused" if options["status"] == PAUSED_OLD_NAME else options["status"]
        filters = JobFilters(status=status, app=options["app"], q=options["search"].strip())
        listed = jobs_filtered(Job.objects.select_related("webhook_handler"), filters, now)
        # A limit goes into the SQL (the database keeps the top rows of its sort, it does not hand
        # over and sort every job); --limit 0 streams them all.
        limited = listed[: options["limit"]] if options["limit"] else listed
        jobs = limited.iterator(chunk_size=BATCH)
        shown, warned = self.write_table(jobs, now)
        if not shown:
            none = "No jobs. Run `manage.py seed_jobs` to register the shipped ones."
            self.stdout.write("No job matches these filters." if filters.any else none)
        elif options["limit"] and shown == options["limit"] and (total := listed.count()) > shown:
            self.stdout.write(f"\n{shown} of {total} jobs shown; --limit 0 lists them all.")
        if warned:
            self.stdout.write(self.style.WARNING("\nLast runs that succeeded with warnings:"))
        for row in warned:
            for warning in row.warnings:
                self.stdout.write(f"{row.job.name}: {warning}")

    def write_table(self, jobs, now) -> tuple[int, list[JobRow]]:
        """Print the jobs batch by batch (columns sized by the first batch); return how many were
        printed and the rows whose last run warned."""
        line, shown, warned = None, 0, []
        while batch := list(islice(jobs, BATCH)):
            rows = job_rows(now=now, jobs=batch, recent_per_job=0)
            cells = [self.cells(row) for row in rows]
            if line is None:
                widths = [max(len(str(r[i])) for r in [COLUMNS, *cells]) for i in range(len(COLUMNS))]
                line = "  ".join(f"{{:{w}}}" for w in widths)
                self.stdout.write(self.style.MIGRATE_HEADING(line.format(*COLUMNS)))
            for row in cells:
                self.stdout.write(line.format(*row))
            shown += len(rows)
            warned += [row for row in rows if row.warnings]
        return shown, warned

    @staticmethod
    def cells(row: JobRow) -> tuple:
        return (
            row.job.name,
            row.job.schedule_description,
            "no" if row.job.enabled else "yes",
            row.status,
            f"{format_datetime(row.job.last_run_at)} {row.last_run_text}" if row.job.last_run_at else "-",
            "never fires" if row.schedule_problem else format_datetime(row.next_run),
            format_duration(row.job.last_duration),
        )
