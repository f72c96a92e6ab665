"""The directory's demo: an embedded legacy source the three source syncs read out of the box."""

from __future__ import annotations

import io
import random
from datetime import date

import pytest
from django.core.management import call_command

from directory import demo
from directory.models import Facility, Member, Position, Region
from directory.source_settings import source_database
from jobs.models import JobRun

from .legacy import source_alias

pytestmark = pytest.mark.django_db(databases=["default", "legacy"])


@pytest.fixture
def embedded_source(settings, tmp_path):
    settings.DIRECTORY_SOURCE_URL = ""
    settings.DIRECTORY_SOURCE_SQLITE_PATH = tmp_path / "directory-source.sqlite3"
    with source_alias(source_database(None, sqlite_path=settings.DIRECTORY_SOURCE_SQLITE_PATH)):
        yield settings.DIRECTORY_SOURCE_SQLITE_PATH


def test_it_seeds_a_source_that_the_demo_jobs_sync(embedded_source):
    assert not demo.demo_present()
    counts = demo.demo_seed(size="small", count=None, today=date(2025, 3, 15), seed=7)
    assert demo.demo_present()
    call_command("seed_jobs", verbosity=0)

    for name in demo.DEMO_JOBS:  # as seed_demo --run-jobs runs them
        call_command("runjob", name, stdout=io.StringIO(), stderr=io.StringIO())

    assert set(JobRun.objects.values_list("job__name", "status")) == {(name, "succeeded") for name in demo.DEMO_JOBS}
    assert Member.objects.count() == counts["members"] == 60
    assert Position.objects.count() == counts["positions"]
    assert Region.objects.count() == 4 and Facility.objects.count() == counts["facilities"]
    assert {"active", "retired", "leave", "terminated"} <= set(Member.objects.values_list("status", flat=True))


def test_it_builds_the_same_source_from_the_same_seed(embedded_source):
    first = demo.source_rows(random.Random(3), members=40, today=date(2025, 3, 15))
    again = demo.source_rows(random.Random(3), members=40, today=date(2025, 3, 15))
    assert first == again


def test_it_never_writes_to_a_real_source(settings, tmp_path):
    settings.DIRECTORY_SOURCE_URL = "mysql://reader@legacy.example.com/members"
    settings.DIRECTORY_SOURCE_SQLITE_PATH = tmp_path / "directory-source.sqlite3"

    assert demo.demo_present()  # nothing to seed
    assert demo.demo_seed(size="small", count=None, today=date(2025, 3, 15)) == {}
    assert not settings.DIRECTORY_SOURCE_SQLITE_PATH.exists()


def test_it_shows_the_directory_in_the_admin(embedded_source, admin_client):
    demo.demo_seed(size="small", count=None, today=date(2025, 3, 15), seed=7)
    for command in ("facilities_regions_sync", "members_sync", "positions_sync"):
        call_command(command, stdout=io.StringIO())
    for model in ("region", "facility", "member", "position", "synccursor", "intercomcontact"):
        assert admin_client.get(f"/admin/directory/{model}/").status_code == 200, model
    member = Member.objects.filter(status="retired").first()
    page = admin_client.get(f"/admin/directory/member/{member.pk}/change/")
    assert page.status_code == 200 and member.member_number in page.content.decode()
