"""What the dashboard pages show about a run or a job, as template filters and as the functions the
pages' JSON uses, so a refreshed field reads exactly as the page first drew it. Moments,
durations and JSON come from ``core.formatting``; charts from ``jobs.dashboard.charts``."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString

from core.formatting import format_datetime, format_duration, format_json, one_line
from jobs.dashboard.charts import runs_chart_svg
from jobs.models import JobRun
from jobs.running.progress import progress_json
from jobs.running.run_options import run_options_words
from jobs.status.rows import JobRow

register = template.Library()
OUTPUT_TAIL_LINES = 20


@register.filter
def when(value) -> str:
    """``2026-12-02 14:03:22 UTC``"""
    return format_datetime(value)


@register.filter
def duration(value) -> str:
    """``53 ms``, ``4.2 s``, ``3 min 05 s``, ``1 h 02 min``"""
    return format_duration(value)


@register.filter
def pretty_json(value) -> str:
    """Indented JSON; nothing for a missing value."""
    return "" if value is None or value == "" else format_json(value)


@register.filter
def run_duration(run: JobRun | None, now: datetime | None = None) -> str:
    """A finished run's duration; a running run's time so far."""
    if run is None:
        return ""
    if run.duration is not None:
        return format_duration(run.duration)
    if run.status == JobRun.Status.RUNNING and run.started_at:
        return f"{format_duration((now or timezone.now()) - run.started_at)} so far"
    return "-"


@register.filter
def run_note(run: JobRun | None) -> str:
    """Why a run was skipped, the first line of its error, or its first warning."""
    if run is None:
        return ""
    if not run.skip_reason and not run.error and run.warnings:
        return one_line(f"warning: {run.warnings[0]}", limit=160)
    return run.skip_reason or one_line(run.error, limit=160)


@register.filter
def run_options(run: JobRun | None) -> str:
    """The run's own options in words: ``as of 2026-03-01 00:00:00 UTC · dry run · --batch-size=10``."""
    return run_options_words(run.options) if run is not None else ""


@register.filter
def run_command_options(run: JobRun | None) -> str:
    """Only the command's own options of the run (as of and dry run have their own lines)."""
    if run is None:
        return ""
    options = run.options or {}
    return run_options_words({key: options[key] for key in ("command_options", "args") if key in options})


@register.filter
def run_worker(run: JobRun) -> str:
    """The host (and process) that ran it."""
    host = run.worker_host or "-"
    return f"{host} (pid {run.worker_pid})" if run.worker_pid else host


@register.filter
def progress_text(progress: dict | None) -> str:
    """``1,200 of 2,000 (60 %), about 4.2 s left`` from ``progress_json``."""
    if not progress:
        return ""
    done, total = progress["done"], progress["total"]
    text = f"{done:,} of {total:,} ({progress['percent']} %)" if total else f"{done:,} done"
    if progress["eta_seconds"] is not None:
        text += f", about {format_duration(progress['eta_seconds'])} left"
    return text


@register.filter
def run_progress(run: JobRun | None) -> str:
    """How far a run that reports its progress has got."""
    return progress_text(progress_json(run, timezone.now())) if run is not None else ""


@register.filter
def output_tail(output: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    """The last ``lines`` lines a run printed."""
    return "\n".join(output.rstrip("\n").splitlines()[-lines:])


def row_sparkline(row: JobRow) -> SafeString:
    """The duration sparkline of a dashboard row: its recent runs, its job's expected duration."""
    return runs_chart_svg(row.recent, expected_seconds=row.job.expected_duration_seconds, compact=True)


@register.simple_tag
def sparkline(row: JobRow) -> SafeString:
    return row_sparkline(row)
