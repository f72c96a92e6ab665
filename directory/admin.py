"""The directory in the admin: synced rows are read-only copies (the legacy source owns them)."""

from __future__ import annotations

from django.contrib import admin

from core.admin_columns import ReadOnlyAdmin

from .models import Facility, IntercomContact, Member, Position, Region, SyncCursor


class SyncedRowsAdmin(ReadOnlyAdmin):
    # The member tables grow with the legacy source: no exact COUNT(*) on every list page.
    show_full_result_count = False


@admin.register(Region)
class RegionAdmin(SyncedRowsAdmin):
    list_display = ["code", "name", "is_active", "synced_at"]
    list_filter = ["is_active"]
    search_fields = ["code", "name"]


@admin.register(Facility)
class FacilityAdmin(SyncedRowsAdmin):
    list_display = ["code", "name", "region", "city", "state", "is_active", "synced_at"]
    list_filter = ["is_active", "region"]
    list_select_related = ["region"]
    search_fields = ["code", "name"]


@admin.register(Member)
class MemberAdmin(SyncedRowsAdmin):
    list_display = ["member_number", "first_name", "last_name", "status", "facility", "is_active", "synced_at"]
    list_filter = ["is_active", "status"]
    list_select_related = ["facility"]
    search_fields = ["member_number", "last_name", "email"]


@admin.register(Position)
class PositionAdmin(SyncedRowsAdmin):
    list_display = ["source_id", "member", "facility", "title", "starts_on", "ends_on", "is_primary", "is_active"]
    list_filter = ["is_active", "is_primary"]
    list_select_related = ["member", "facility"]
    search_fields = ["member__member_number", "title"]


@admin.register(SyncCursor)
class SyncCursorAdmin(SyncedRowsAdmin):
    list_display = ["name", "source_updated_at", "full_synced_at", "updated_at"]


@admin.register(IntercomContact)
class IntercomContactAdmin(SyncedRowsAdmin):
    list_display = ["member", "contact_id", "pushed_tag", "pushed_at"]
    list_select_related = ["member"]
    search_fields = ["member__member_number", "contact_id"]
