"""The legacy source's tables, read through the ``legacy`` alias (unmanaged: never migrated).

``SourceDatabaseRouter`` sends every query on these models to ``legacy`` and refuses writes;
the connection is read-only besides (``directory.source_settings``). Column names are the
legacy system's (``directory.legacy_schema`` has the DDL, docs/directory.md the meaning).
"""

from __future__ import annotations

from django.db import models


class SourceModel(models.Model):
    """Base of the legacy tables: the router recognises them by this class."""

    updated_at = models.DateTimeField(db_column="updated_at")

    class Meta:
        abstract = True
        managed = False


class SourceRegion(SourceModel):
    code = models.CharField(max_length=10, primary_key=True, db_column="RegionCode")
    name = models.CharField(max_length=100, db_column="RegionName")

    class Meta(SourceModel.Meta):
        db_table = "tblRegion"

    def __str__(self) -> str:
        return self.code


class SourceFacility(SourceModel):
    id = models.IntegerField(primary_key=True, db_column="FacID")
    code = models.CharField(max_length=12, db_column="FacCode")
    name = models.CharField(max_length=150, db_column="FacName")
    region_code = models.CharField(max_length=10, null=True, db_column="RegionCode")
    city = models.CharField(max_length=80, null=True, db_column="City")
    state = models.CharField(max_length=2, null=True, db_column="StateCd")

    class Meta(SourceModel.Meta):
        db_table = "tblFacility"

    def __str__(self) -> str:
        return self.code


class SourceMember(SourceModel):
    id = models.IntegerField(primary_key=True, db_column="MemberID")
    member_number = models.CharField(max_length=20, db_column="MemberNo")
    first_name = models.CharField(max_length=60, null=True, db_column="FirstName")
    last_name = models.CharField(max_length=60, null=True, db_column="LastName")
    email = models.CharField(max_length=254, null=True, db_column="EmailAddr")
    phone = models.CharField(max_length=30, null=True, db_column="PhoneNo")
    status = models.CharField(max_length=20, null=True, db_column="MbrStatus")
    facility_code = models.CharField(max_length=12, null=True, db_column="HomeFacCode")
    hired_on = models.DateField(null=True, db_column="HireDate")

    class Meta(SourceModel.Meta):
        db_table = "tblMember"

    def __str__(self) -> str:
        return self.member_number


class SourcePosition(SourceModel):
    id = models.IntegerField(primary_key=True, db_column="PosID")
    member_number = models.CharField(max_length=20, db_column="MemberNo")
    facility_code = models.CharField(max_length=12, db_column="FacCode")
    title = models.CharField(max_length=100, db_column="PosTitle")
    starts_on = models.DateField(null=True, db_column="StartDate")
    ends_on = models.DateField(null=True, db_column="EndDate")
    is_primary = models.BooleanField(db_column="IsPrimary")

    class Meta(SourceModel.Meta):
        db_table = "tblMemberPosition"

    def __str__(self) -> str:
        return str(self.id)
