"""What the dashboard's pages poll to update themselves in place: the selectors' own JSON of a job
row (``job_row_json``) and of a run (``run_json``), plus the texts the page shows for them, made
by the same filters the templates use, so a refreshed field reads as the page first drew it."""

from __future__ import annotations

from datetime import datetime

from core.formatting import format_datetime, format_duration, format_json, format_time_of_day
from jobs.models import JobRun
from jobs.status.rows import JobRow, job_row_json, run_json
from jobs.templatetags.jobs_dashboard import (
    output_tail,
    progress_text,
    row_sparkline,
    run_duration,
    run_note,
    run_options,
    run_worker,
)


def updated_text(now: datetime) -> str:
    """The pages' "Updated" line: the page and each refresh say it."""
    return f"Updated {format_time_of_day(now)}"


def job_row_page_json(row: JobRow) -> dict:
    """A job's row as the dashboard and the job's page show it."""
    job = row.job
    return {
        **job_row_json(row),
        "sparkline_svg": str(row_sparkline(row)),
        "last_duration": format_duration(job.last_duration),
        "last_run_text": format_datetime(job.last_run_at) if job.last_run_at else "",
        "next_run_text": _next_run_text(row),
    }


def dashboard_json(data: dict, *, rows_html: str | None, generated_at: datetime) -> dict:
    """The dashboard's refresh from ``dashboard_page``'s data: counts, the page's rows (as JSON,
    and as the table's rows drawn by the page's own template, for when the page's jobs changed)."""
    page = data["page"]
    runnable = data["runnable"]
    return {
        "generated_at": generated_at.isoformat(),
        "updated": data["updated"],
        "counts": data["counts"],
        "totals": data["totals"],
        "page": {"number": page.number, "pages": page.paginator.num_pages, "jobs": page.paginator.count},
        "jobs": [{**job_row_page_json(row), "can_run": row.job.pk in runnable} for row in data["rows"]],
        **({"rows_html": rows_html} if rows_html is not None else {}),
        "health": data["health"],
        "alerts": data["alerts"],
        "queues": data["queues"],
    }


def job_page_json(
    *, row: JobRow, runs: list[JobRun], latest: JobRun | None, chart: str, next_runs: list[datetime], now: datetime
) -> dict:
    """What the job's page shows that changes: its row, next runs, chart, latest run and runs."""
    return {
        "updated": updated_text(now),
        "job": job_row_page_json(row),
        "next_runs": [format_datetime(moment) for moment in next_runs],
        "runs": [run_page_json(run, now, full=False) for run in runs],
        "latest": run_page_json(latest, now) if latest else None,
        "chart_svg": str(chart),
    }


def run_page_json(run: JobRun, now: datetime, *, full: bool = True) -> dict:
    """``run_json`` and, under ``texts``, each field as the run's page and its job's page show it."""
    data = run_json(run, full=full)
    texts = {
        "created_at": format_datetime(run.created_at),
        "started_at": format_datetime(run.started_at),
        "finished_at": format_datetime(run.finished_at),
        "duration": run_duration(run, now),
        "progress": progress_text(data["progress"]),
        "note": run_note(run),
        "options": run_options(run),
    }
    if full:
        texts.update(
            worker=run_worker(run),
            summary=format_json(run.summary) if run.summary else "",
            output_tail=output_tail(run.output),
        )
        if data["dry_run"] and run.summary:
            texts["would"] = [
                [f"would {key}", format_json(value)] for key, value in run.summary.items() if key != "dry_run"
            ]
    data["texts"] = texts
    return data


def _next_run_text(row: JobRow) -> str:
    if row.next_run:
        return format_datetime(row.next_run)
    return "never fires" if row.schedule_problem else ""
