"""The directory as our database keeps it: copies of the legacy source's rows.

Rows are upserted by the source's business key (a code, a member number, a position id), never
deleted: a row the source no longer has is marked inactive by a full sync. ``source_updated_at``
is the source row's ``updated_at``; ``synced_at`` when our copy last changed.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class SyncedRow(models.Model):
    is_active = models.BooleanField(
        default=True, help_text="False once a full sync no longer finds the row in the source (never deleted)."
    )
    source_updated_at = models.DateTimeField(help_text="The source row's updated_at when it was last read.")
    synced_at = models.DateTimeField(help_text="When a sync last changed this row.")

    class Meta:
        abstract = True


class Region(SyncedRow):
    code = models.CharField(max_length=10)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["code"], name="directory_region_code_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Facility(SyncedRow):
    code = models.CharField(max_length=12)
    name = models.CharField(max_length=150)
    region = models.ForeignKey(Region, null=True, blank=True, on_delete=models.PROTECT, related_name="facilities")
    city = models.CharField(max_length=80, blank=True)
    state = models.CharField(max_length=2, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "facilities"
        constraints = [models.UniqueConstraint(fields=["code"], name="directory_facility_code_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Member(SyncedRow):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"
        LEAVE = "leave", "On leave"
        TERMINATED = "terminated", "Terminated"
        DECEASED = "deceased", "Deceased"
        UNKNOWN = "unknown", "Unknown"

    member_number = models.CharField(max_length=20, help_text="The source's MemberNo: the key syncs match on.")
    first_name = models.CharField(max_length=60, blank=True)
    last_name = models.CharField(max_length=60, blank=True)
    email = models.CharField(max_length=254, blank=True)
    phone = models.CharField(max_length=30, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UNKNOWN)
    source_status = models.CharField(
        max_length=20, blank=True, help_text="MbrStatus as the source wrote it (free text; 'unknown' when unmapped)."
    )
    facility = models.ForeignKey(Facility, null=True, blank=True, on_delete=models.PROTECT, related_name="members")
    hired_on = models.DateField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True, help_text="When a full sync found it gone.")

    class Meta:
        ordering = ["member_number"]
        constraints = [
            models.UniqueConstraint(fields=["member_number"], name="directory_member_number_unique"),
            models.CheckConstraint(
                condition=Q(is_active=True, deactivated_at__isnull=True)
                | Q(is_active=False, deactivated_at__isnull=False),
                name="directory_member_deactivated_iff_inactive",
            ),
        ]
        indexes = [
            # intercom-sync: active members with status active or retired, walked by primary key.
            models.Index(fields=["status", "id"], condition=Q(is_active=True), name="directory_member_active_status"),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} ({self.member_number})".strip()

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class Position(SyncedRow):
    source_id = models.BigIntegerField(help_text="The source's PosID: the key syncs match on.")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="positions")
    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="positions")
    title = models.CharField(max_length=100)
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)
    is_primary = models.BooleanField(default=False)

    class Meta:
        ordering = ["source_id"]
        constraints = [models.UniqueConstraint(fields=["source_id"], name="directory_position_source_id_unique")]

    def __str__(self) -> str:
        return f"{self.title} ({self.source_id})"


class SyncCursor(models.Model):
    """Where each sync stands: the incremental cursor and the last full sync."""

    name = models.CharField(max_length=20, help_text="regions, facilities, members or positions.")
    source_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="Newest source updated_at read so far: the incremental cursor."
    )
    full_synced_at = models.DateTimeField(null=True, blank=True, help_text="When the last full sync finished.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["name"], name="directory_synccursor_name_unique")]

    def __str__(self) -> str:
        return self.name
