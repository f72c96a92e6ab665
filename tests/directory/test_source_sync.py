"""The source syncs against a legacy database: MariaDB (PostgreSQL pass) and SQLite (embedded pass)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from directory.models import Facility, Member, Position, Region, SourceMember, SyncCursor
from directory.routers import SourceDatabaseReadOnly

from .legacy import T0

# The legacy alias is declared so the test may read it; tests never write to it through Django.
pytestmark = pytest.mark.django_db(databases=["default", "legacy"])

NOW = timezone.make_aware(datetime(2025, 3, 2, 7, 15))


def run(command: str, *args: str) -> dict:
    return call_command(command, *args, "--as-of", NOW.isoformat(), stdout=io.StringIO())


def counts(summary: dict) -> dict:
    return {k: summary[k] for k in ("read", "created", "updated", "unchanged", "deactivated", "skipped")}


@pytest.fixture
def facilities(source):
    source.region("NE", "North East")
    source.facility("F1", name="Mercy General")
    source.facility("F2", name="St. Luke's")
    run("facilities_regions_sync")
    return source


def test_it_creates_updates_deactivates_and_counts_unchanged(facilities):
    source = facilities
    for number in ("M1", "M2", "M3"):
        source.member(number)
    assert counts(run("members_sync")) == dict(read=3, created=3, updated=0, unchanged=0, deactivated=0, skipped=0)

    source.update_member("M1", at=T0 + timedelta(hours=1), LastName="Lopez-Ruiz", MbrStatus=" RETIRED ")
    source.delete_member("M3")
    summary = run("members_sync", "--full")

    assert summary["mode"] == "full"
    assert counts(summary) == dict(read=2, created=0, updated=1, unchanged=1, deactivated=1, skipped=0)
    m1, m2, m3 = Member.objects.order_by("member_number")
    assert (m1.last_name, m1.status, m1.source_status, m1.is_active) == ("Lopez-Ruiz", "retired", "RETIRED", True)
    assert m1.facility.name == "Mercy General" and m1.facility.region.name == "North East"
    assert m2.is_active and m2.email == "m2@example.com"
    assert (m3.is_active, m3.deactivated_at) == (False, NOW)  # kept, never deleted


def test_it_reads_only_rows_changed_since_its_cursor(facilities):
    source = facilities
    source.member("OLD1", at=T0 - timedelta(days=10))
    source.member("OLD2", at=T0 - timedelta(days=10))
    source.member("NEW", at=T0)
    assert run("members_sync")["mode"] == "full"  # no cursor yet
    assert SyncCursor.objects.get(name="members").source_updated_at == timezone.make_aware(T0)

    source.update_member("OLD1", at=T0 + timedelta(days=1), EmailAddr="ana@new.example.com")
    source.delete_member("OLD2")
    summary = run("members_sync")

    # OLD1 changed; NEW is re-read (within the overlap before the cursor) and unchanged; OLD2 is
    # not read at all, and an incremental sync never deactivates.
    assert summary["mode"] == "incremental"
    assert counts(summary) == dict(read=2, created=0, updated=1, unchanged=1, deactivated=0, skipped=0)
    assert Member.objects.get(member_number="OLD1").email == "ana@new.example.com"
    assert Member.objects.get(member_number="OLD2").is_active
    assert counts(run("members_sync", "--full"))["deactivated"] == 1


def test_it_writes_nothing_on_a_dry_run(facilities):
    facilities.member("M1")
    facilities.member("M2")
    summary = run("members_sync", "--dry-run")
    assert summary["dry_run"] is True and summary["created"] == 2
    assert not Member.objects.exists()
    assert not SyncCursor.objects.filter(name="members").exists()

    run("members_sync")
    facilities.delete_member("M2")
    assert run("members_sync", "--full", "--dry-run")["deactivated"] == 1
    assert Member.objects.get(member_number="M2").is_active


def test_it_changes_nothing_when_run_again(facilities):
    for number in ("M1", "M2"):
        facilities.member(number)
        facilities.position(number, "F2", title="Charge nurse")
    run("members_sync")
    run("positions_sync")
    before = list(Member.objects.values_list("member_number", "synced_at")) + list(
        Position.objects.values_list("source_id", "synced_at")
    )

    again = call_command("members_sync", "--full", stdout=io.StringIO())
    positions = call_command("positions_sync", "--full", stdout=io.StringIO())

    assert counts(again) == dict(read=2, created=0, updated=0, unchanged=2, deactivated=0, skipped=0)
    assert positions["unchanged"] == 2 and positions["created"] == positions["updated"] == 0
    after = list(Member.objects.values_list("member_number", "synced_at")) + list(
        Position.objects.values_list("source_id", "synced_at")
    )
    assert after == before


def test_it_links_positions_to_members_and_facilities_by_code(facilities):
    facilities.member("M1")
    facilities.member("M2")
    run("members_sync")
    facilities.position("M1", "F2", title="Charge nurse")
    facilities.member("LATE")  # joined after members-sync ran: its position waits for the next run
    facilities.position("LATE", "F1")

    summary = run("positions_sync")

    assert (summary["created"], summary["skipped"]) == (1, 1)
    position = Position.objects.get()
    assert (position.member.member_number, position.facility.code, position.title) == ("M1", "F2", "Charge nurse")


def test_it_reactivates_a_member_who_comes_back(facilities):
    facilities.member("M1")
    facilities.member("M2")
    run("members_sync")
    facilities.delete_member("M2")
    run("members_sync", "--full")
    facilities.member("M2", at=T0 + timedelta(days=2))

    summary = run("members_sync")

    assert summary["updated"] == 1
    assert Member.objects.filter(is_active=True).count() == 2
    assert Member.objects.get(member_number="M2").deactivated_at is None


def test_it_refuses_to_deactivate_everyone_when_the_source_is_empty(facilities):
    facilities.member("M1")
    run("members_sync")
    facilities.delete_member("M1")

    with pytest.raises(CommandError, match="returned no members"):
        run("members_sync", "--full")
    assert Member.objects.get().is_active


def test_it_never_writes_to_the_source(facilities):
    facilities.member("M1")
    member = SourceMember.objects.get()  # read through the legacy alias
    with pytest.raises(SourceDatabaseReadOnly):
        member.save()
    with pytest.raises(DatabaseError):
        with connections["legacy"].cursor() as cursor:
            cursor.execute("UPDATE tblMember SET LastName = 'X'")
    assert SourceMember.objects.get().last_name == "Lopez"


def test_it_syncs_regions_and_facilities_and_marks_gone_ones_inactive(facilities):
    assert Region.objects.get().name == "North East"
    assert set(Facility.objects.values_list("code", "state", "region__code")) == {
        ("F1", "MA", "NE"),
        ("F2", "MA", "NE"),
    }
    facilities.execute("DELETE FROM tblFacility WHERE FacCode = %s", ("F2",))
    if facilities.kind == "mariadb":
        facilities.connection.commit()

    summary = run("facilities_regions_sync")

    assert summary["facilities"]["deactivated"] == 1 and summary["regions"]["unchanged"] == 1
    assert not Facility.objects.get(code="F2").is_active


@pytest.mark.postgres
@pytest.mark.parametrize("source", [pytest.param("mariadb", marks=pytest.mark.mariadb)], indirect=True)
def test_it_issues_a_number_of_queries_that_grows_only_by_batch(source):
    source.region("NE")
    source.facility("F1")
    run("facilities_regions_sync")

    def queries(members: int, batch_size: int) -> int:
        Member.objects.all().delete()
        SyncCursor.objects.filter(name="members").delete()
        source.truncate()
        source.region("NE")
        source.facility("F1")
        source.insert("tblMember", [(f"Q{i}", "A", "B", None, None, "Active", "F1", None, T0) for i in range(members)])
        # One member of ours the source lacks: every batch reads our copies, as on any run but the first.
        Member.objects.create(member_number="GONE", source_updated_at=NOW, synced_at=NOW)
        with (
            CaptureQueriesContext(connections["default"]) as ours,
            CaptureQueriesContext(connections["legacy"]) as theirs,
        ):
            summary = call_command("members_sync", "--batch-size", str(batch_size), stdout=io.StringIO())
        assert (summary["created"], summary["deactivated"]) == (members, 1)
        return len(ours) + len(theirs)

    one_batch_small, one_batch_large = queries(10, 1000), queries(900, 1000)
    three_batches = queries(900, 300)
    assert one_batch_small == one_batch_large
    assert three_batches - one_batch_large <= 2 * 6  # a fixed handful per extra batch
