"""The duration chart of a job's runs, as inline SVG drawn on the server (no script, no asset).

One drawing at two sizes: the job page's chart (duration up a labelled axis in the unit that fits,
start time across, the job's expected duration as a dashed line) and the dashboard's sparkline (the
same line and dots, its scale's top written beside it). Both scale to the runs shown, so short runs
of a job expected to take an hour do not sit flat on zero: an expected duration above the longest
run is named at the top of the chart instead of drawn. Every run is a dot with a ``<title>``, which a browser shows
on hover; a run that failed, timed out or was abandoned is a red dot; a single run is a dot. The
SVG scales to its box (``viewBox``; the page's CSS makes the chart 100% wide), so a phone shows it
whole."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from core.formatting import format_datetime, format_duration
from jobs.models import JobRun

FAILURE_COLOUR = "#b3261e"  # the pages' --bad; an attribute, so the SVG reads right without the CSS too


@dataclass(frozen=True)
class ChartPoint:
    run_id: int
    at: datetime
    seconds: float
    status: str
    dry_run: bool = False

    @property
    def failed(self) -> bool:
        return self.status in JobRun.FAILURE_STATUSES

    @property
    def title(self) -> str:
        """``run #12 · 3.2 s · succeeded · 2026-12-02 14:03:22 UTC``"""
        status = f"{self.status}, dry run" if self.dry_run else self.status
        return f"run #{self.run_id} · {format_duration(self.seconds)} · {status} · {format_datetime(self.at)}"


@dataclass(frozen=True)
class Box:
    """The drawing's size in viewBox units, the margins kept for the axes' labels, and the gap
    between the y axis and the first run (so its dot does not sit on the axis)."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    dot: float
    gap: int = 0

    def x(self, fraction: float) -> float:
        return self.left + self.gap + fraction * (self.width - self.left - self.right - 2 * self.gap)

    def y(self, fraction: float) -> float:
        return self.height - self.bottom - fraction * (self.height - self.top - self.bottom)


CHART = Box(600, 250, left=62, right=16, top=22, bottom=56, dot=3.5, gap=10)
# The right margin holds the scale: the top's duration over a 0.
SPARKLINE = Box(150, 28, left=3, right=40, top=4, bottom=4, dot=1.6)
# A chart's unit by the length of its longest run: (largest top in seconds, unit, seconds per unit).
UNITS = ((1, "milliseconds", 0.001), (120, "seconds", 1), (7200, "minutes", 60), (math.inf, "hours", 3600))


def runs_chart_svg(runs: Iterable[JobRun], *, expected_seconds: int | None, compact: bool = False) -> SafeString:
    """The chart of ``runs`` (any order): the job page's, or the dashboard's sparkline."""
    return duration_chart_svg(chart_points(runs), expected_seconds=expected_seconds, compact=compact)


def chart_points(runs: Iterable[JobRun]) -> list[ChartPoint]:
    """The runs that have a duration, oldest first, each at the time it started."""
    points = [
        ChartPoint(
            run_id=run.pk,
            at=run.started_at or run.created_at,
            seconds=run.duration.total_seconds(),
            status=run.status,
            dry_run=bool((run.options or {}).get("dry_run")),
        )
        for run in runs
        if run.duration is not None
    ]
    return sorted(points, key=lambda point: (point.at, point.run_id))


def nice_step(highest: float, parts: int = 4) -> float:
    """A round step (1, 2 or 5 times a power of ten) that cuts 0..highest into about ``parts``."""
    raw = max(highest, 0.001) / parts
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))


@dataclass(frozen=True)
class Scale:
    """The duration axis: ``ticks`` round steps of ``step`` ``unit`` up to ``top`` seconds."""

    unit: str
    per_unit: float
    step: float
    ticks: int

    @classmethod
    def fitting(cls, longest: float) -> Scale:
        unit, per_unit = next((name, size) for bound, name, size in UNITS if longest < bound)
        step = nice_step(longest / per_unit)
        return cls(unit, per_unit, step, max(1, math.ceil(longest / per_unit / step - 1e-9)))

    @property
    def top(self) -> float:
        return self.step * self.ticks * self.per_unit

    def label(self, tick: int) -> str:
        return f"{round(self.step * tick, 9):g}"


def duration_chart_svg(
    points: list[ChartPoint], *, expected_seconds: int | None = None, compact: bool = False
) -> SafeString:
    """The chart of ``points`` (oldest first), or with ``compact`` the dashboard's sparkline."""
    if not points:
        return mark_safe('<span class="muted">no runs yet</span>')
    box = SPARKLINE if compact else CHART
    longest = max(point.seconds for point in points)
    scale = Scale.fitting(longest)
    # The sparkline's top is its longest run, written beside it; the chart's a round tick.
    top = max(longest, 0.001) if compact else scale.top
    first, last = points[0].at, points[-1].at
    span = (last - first).total_seconds()
    places = [
        (box.x((point.at - first).total_seconds() / span if span else 0.5), box.y(point.seconds / top))
        for point in points
    ]
    parts = [sparkline_scale(box, longest)] if compact else [axes(box, scale, first, last)]
    if expected_seconds and expected_seconds <= top:
        parts.append(expected_line(box, box.y(expected_seconds / top), expected_seconds, compact))
    elif expected_seconds and not compact:
        parts.append(expected_above(box, expected_seconds))
    if len(places) > 1:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in places)
        parts.append(format_html('<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/>', line))
    parts.append(dots(box, points, places))
    label = f"Duration of {len(points)} run{'s' if len(points) != 1 else ''}, longest {format_duration(longest)}"
    size = format_html(' width="{}" height="{}"', box.width, box.height) if compact else ""
    return format_html(
        '<svg class="{}" role="img" viewBox="0 0 {} {}"{} aria-label="{}"><title>{}</title>{}</svg>',
        "spark" if compact else "chart",
        box.width,
        box.height,
        size,
        label,
        label,
        mark_safe("".join(parts)),
    )


def sparkline_scale(box: Box, longest: float) -> SafeString:
    """The sparkline's scale, right of it: the longest run's duration at the top, 0 at the bottom."""
    x = box.width - box.right + 4
    return format_html(
        '<g class="scale" fill="#5b6473" font-size="9"><text x="{}" y="{}" dy="4">{}</text>'
        '<text x="{}" y="{}">0</text></g>',
        x,
        box.top,
        format_duration(longest),
        x,
        box.height - box.bottom,
    )


def axes(box: Box, scale: Scale, first: datetime, last: datetime) -> SafeString:
    """Duration up the left in ``scale``'s unit with a round tick and grid line each step; the
    first and last start times along the bottom."""
    base, right = box.height - box.bottom, box.width - box.right
    grid = format_html_join(
        "",
        '<line class="grid" x1="{left}" x2="{right}" y1="{y}" y2="{y}" stroke="#d8dde6"/>'
        '<text class="tick" x="{label_x}" y="{y}" dy="4" text-anchor="end">{value}</text>',
        (
            {
                "left": box.left,
                "right": right,
                "y": f"{box.y(i / scale.ticks):.1f}",
                "label_x": box.left - 6,
                "value": scale.label(i),
            }
            for i in range(scale.ticks + 1)
        ),
    )
    return format_html(
        '<g class="axes" fill="#5b6473" font-size="12">{grid}'
        '<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{base}" stroke="#5b6473"/>'
        '<line class="axis" x1="{left}" x2="{right}" y1="{base}" y2="{base}" stroke="#5b6473"/>'
        '<text class="axis-label" transform="translate(14 {middle}) rotate(-90)" text-anchor="middle">{unit}</text>'
        "{first}{last}"
        '<text class="axis-label" x="{centre}" y="{dates}" text-anchor="middle">started</text></g>',
        grid=grid,
        left=box.left,
        right=right,
        top=box.top,
        base=base,
        middle=f"{(box.top + base) / 2:.0f}",
        unit=f"duration ({scale.unit})",
        dates=base + 18,
        centre=f"{box.x(0.5):.0f}",
        first=moment_label(first, box.left, base + 18, "start"),
        last=moment_label(last, right, base + 18, "end") if last != first else "",
    )


def moment_label(moment: datetime, x: float, y: float, anchor: str) -> SafeString:
    """A moment in the one format, its date over its time, so two fit side by side on a phone."""
    day, time = format_datetime(moment).split(" ", 1)
    return format_html(
        '<text class="tick" x="{x}" y="{y}" text-anchor="{anchor}"><tspan x="{x}">{day}</tspan>'
        '<tspan x="{x}" dy="1.2em">{time}</tspan></text>',
        x=x,
        y=y,
        anchor=anchor,
        day=day,
        time=time,
    )


def expected_line(box: Box, y: float, seconds: int, compact: bool) -> SafeString:
    words = f"expected {format_duration(seconds)}"
    right, y = box.width - box.right, f"{y:.1f}"
    label = format_html(
        '<text class="expected-label" x="{}" y="{}" dy="-5" text-anchor="end" font-size="12">{}</text>',
        right,
        y,
        words,
    )
    return format_html(
        '<g class="expected" fill="#8a5a00"><title>{}</title>'
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#8a5a00" stroke-dasharray="{}"/>{}</g>',
        words,
        box.left,
        right,
        y,
        y,
        "3 2" if compact else "6 4",
        "" if compact else label,
    )


def expected_above(box: Box, seconds: int) -> SafeString:
    """The expected duration, named above the plot when every run shown took less."""
    return format_html(
        '<text class="expected-label" x="{}" y="{}" dy="-8" text-anchor="end" font-size="12" fill="#8a5a00">'
        "expected {} (above every run shown)</text>",
        box.width - box.right,
        box.top,
        format_duration(seconds),
    )


def dots(box: Box, points: list[ChartPoint], places: list[tuple[float, float]]) -> SafeString:
    """A titled dot per run, red and larger for a failure."""
    return format_html_join(
        "",
        '<circle class="{css}" cx="{x}" cy="{y}" r="{r}" fill="{fill}"><title>{title}</title></circle>',
        (
            {
                "css": "dot failed" if point.failed else "dot",
                "x": f"{x:.1f}",
                "y": f"{y:.1f}",
                "r": f"{box.dot * (1.4 if point.failed else 1):g}",
                "fill": FAILURE_COLOUR if point.failed else "currentColor",
                "title": point.title,
            }
            for point, (x, y) in zip(points, places, strict=True)
        ),
    )
