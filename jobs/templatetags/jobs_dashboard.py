"""Small presentation helpers of the dashboard: the duration sparkline (inline SVG, no
external assets) and human durations."""

from __future__ import annotations

from datetime import timedelta

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


def sparkline_svg(values: list[float], *, width: int = 120, height: int = 28, label: str = "") -> SafeString:
    """A polyline of ``values`` (oldest first) scaled to the box; numbers only, so safe to inline."""
    if not values:
        return mark_safe('<span class="muted">no runs yet</span>')
    top = max(values) or 1.0
    step = width / max(len(values) - 1, 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values))
    last_x, last_y = points.rsplit(" ", 1)[-1].split(",")
    title = label or f"last {len(values)} durations, longest {format_seconds(top)}"
    return format_html(
        '<svg class="spark" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" aria-label="{t}">'
        "<title>{t}</title>"
        '<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{p}"/>'
        '<circle cx="{x}" cy="{y}" r="2" fill="currentColor"/></svg>',
        w=width,
        h=height,
        t=title,
        p=points,
        x=last_x,
        y=last_y,
    )


def format_seconds(value: float | timedelta | None) -> str:
    if value is None:
        return "-"
    total = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if total < 60:
        return f"{total:.2f} s"
    minutes, secs = divmod(int(round(total)), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


@register.simple_tag
def sparkline(values, width: int = 120, height: int = 28) -> SafeString:
    return sparkline_svg(list(values), width=width, height=height)


@register.filter
def duration(value) -> str:
    return format_seconds(value)
