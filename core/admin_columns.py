"""Cells of the admin's lists, kept narrow enough for a 1366 px screen: moments, days and durations
in the one format of every page (``core.formatting``), long text cut to one line with the whole of
it on hover. Shared by every app's admin; the CSS is in templates/admin/base_site.html.

``OneFormatAdmin`` (and the inlines below) show every date, date-time and duration field named in
``list_display`` or ``readonly_fields`` through those formatters instead of Django's defaults
(``Dec. 6, 2026, 5:05 p.m.``, ``0:00:00.022887``): each such name becomes a display callable that
sorts by the field. Editable fields keep their widgets, which already read ``2026-12-06``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.html import format_html

from core.formatting import NONE, format_date, format_datetime, format_duration, one_line

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


def _formatter(field) -> Callable | None:
    if isinstance(field, models.DateTimeField):
        return when
    if isinstance(field, models.DateField):
        return format_date
    if isinstance(field, models.DurationField):
        return format_duration
    return None


@cache
def formatted_column(model, name):
    """``name`` itself, or for a date, date-time or duration field of ``model`` a display callable
    in the one format (the same object on every call, so fieldsets and readonly_fields agree)."""
    if not isinstance(name, str):
        return name
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return name
    formatter = _formatter(field)
    if formatter is None:
        return name

    @admin.display(description=field.verbose_name, ordering=name)
    def column(obj) -> str:
        value = getattr(obj, name)
        return NONE if value is None else formatter(value)

    column.__name__ = name  # the cell keeps its CSS class (field-<name>) and its help text
    return column


def _formatted_fieldsets(model, fieldsets, readonly: set) -> list:
    """``fieldsets`` with the read-only date/duration names swapped for their callables."""

    def swap(entry):
        if isinstance(entry, (list, tuple)):
            return type(entry)(swap(item) for item in entry)
        column = formatted_column(model, entry)
        return column if column in readonly else entry

    return [(title, {**options, "fields": swap(options["fields"])}) for title, options in fieldsets]


class OneFormatMixin:
    """Dates, moments and durations of the list and the read-only fields in the one format."""

    def get_list_display(self, request):
        editable = set(getattr(self, "list_editable", ()))
        return [
            name if name in editable else formatted_column(self.model, name)
            for name in super().get_list_display(request)
        ]

    def get_list_display_links(self, request, list_display):
        links = super().get_list_display_links(request, list_display)
        return links if links is None else [formatted_column(self.model, name) for name in links]

    def get_readonly_fields(self, request, obj=None):
        return [formatted_column(self.model, name) for name in super().get_readonly_fields(request, obj)]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            # A page the user may only view shows every field read-only (Django reads them from
            # these fieldsets): all of them in the one format.
            readonly = {formatted_column(self.model, name) for name in flatten_fieldsets(fieldsets)}
        else:
            readonly = set(self.get_readonly_fields(request, obj))
        return _formatted_fieldsets(self.model, fieldsets, readonly)


class OneFormatAdmin(OneFormatMixin, admin.ModelAdmin):
    pass


class ReadOnlyAdmin(OneFormatAdmin):
    """Rows written by jobs: visible, filterable, never added, edited or deleted by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class OneFormatTabularInline(OneFormatMixin, admin.TabularInline):
    pass


class OneFormatStackedInline(OneFormatMixin, admin.StackedInline):
    pass
