"""Cells of the admin's lists, kept narrow enough for a 1366 px screen: moments in the one format
of every page (``core.formatting``), long text cut to one line with the whole of it on hover.
Shared by the jobs, notifications and billing admins; the CSS is in templates/admin/base_site.html."""

from __future__ import annotations

from datetime import datetime

from django.utils.html import format_html

from core.formatting import format_datetime, one_line

# A hover text is for reading, not a copy of a whole traceback in every row: the run's or the
# message's own page shows all of it.
TITLE_LIMIT = 2000


def when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), format_datetime(value))


def one_line_cell(text: str | None) -> str:
    """The first line of ``text`` on one line (an ellipsis where the column ends), all of it on hover."""
    if not text:
        return "-"
    full = text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"
    return format_html('<span class="one-line" title="{}">{}</span>', full, one_line(text, limit=TITLE_LIMIT))
