"""Every admin page, of every app, shows dates, moments and durations in the one format of the
dashboard (``2026-12-06 17:05:03 UTC``, ``2026-07-01``, ``22 ms``), never Django's defaults."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse

from jobs.models import Job, JobRun

pytestmark = pytest.mark.django_db

# Django's default renderings: "Dec. 6, 2026", "July 1, 2026", "5:05 p.m.", "0:00:00.022887".
MONTH = r"(Jan|Feb|Mar|Apr|May|June?|July?|Aug|Sept?|Oct|Nov|Dec)[a-z]*\.? \d{1,2}, \d{4}"
CLOCK = r"\b\d{1,2}(:\d\d)? [ap]\.m\.|\bnoon\b|\bmidnight\b"
TIMEDELTA = r"(?<!\d )\b\d+:\d\d:\d\d(\.\d+)?\b"  # not the time of "2026-12-06 17:05:03"
DEFAULT_FORMATS = re.compile(f"{MONTH}|{CLOCK}|{TIMEDELTA}")
ONE_FORMAT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


def default_formats(html: str) -> list[str]:
    # Scripts and form inputs hold machine values (ISO stamps, a time widget's 17:05:03).
    text = re.sub(r"<script.*?</script>|<input[^>]*>|<time datetime=\"[^\"]*\"", "", html, flags=re.S)
    return [match.group(0) for match in DEFAULT_FORMATS.finditer(text)]


@pytest.fixture
def demo():
    """Every app's demo rows, and a finished run (with its retry) of every seeded job."""
    call_command("seed_jobs", verbosity=0)
    call_command("seed_demo", size="small", as_of="2026-07-15", verbosity=0)
    started = datetime(2026, 12, 6, 17, 5, 3, tzinfo=UTC)
    for job in Job.objects.all():
        failed = JobRun.objects.create(
            job=job,
            status=JobRun.Status.FAILED,
            triggered_by="schedule",
            started_at=started,
            finished_at=started + timedelta(milliseconds=22),
            duration=timedelta(microseconds=22887),
            error="boom",
        )
        JobRun.objects.create(
            job=job,
            status=JobRun.Status.SUCCEEDED,
            triggered_by="retry",
            retry_of=failed,
            attempt=2,
            started_at=started + timedelta(minutes=1),
            finished_at=started + timedelta(minutes=4, seconds=5),
            duration=timedelta(minutes=3, seconds=5),
        )
        Job.objects.filter(pk=job.pk).update(
            last_run_at=started, last_run_status="succeeded", last_duration=timedelta(seconds=1.4)
        )


def test_it_shows_every_admin_list_and_change_page_in_the_one_format(demo, admin_client):
    pages = []
    for model in apps.get_models():
        if not admin.site.is_registered(model):
            continue
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        first = model.objects.order_by("pk").first()
        if first is not None:
            pages.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
    found = {}
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        if defaults := default_formats(response.content.decode()):
            found[url] = defaults[:3]
    assert found == {}


def test_it_shows_a_run_and_its_job_with_moments_and_durations_in_the_one_format(demo, admin_client):
    run = JobRun.objects.exclude(duration=None).order_by("pk").first()
    run_page = admin_client.get(reverse("admin:jobs_jobrun_change", args=[run.pk])).content.decode()
    job_page = admin_client.get(reverse("admin:jobs_job_change", args=[run.job_id])).content.decode()
    runs_list = admin_client.get(reverse("admin:jobs_jobrun_changelist") + "?housekeeping=1").content.decode()

    for html in (run_page, job_page, runs_list):
        assert ONE_FORMAT.search(html)
        assert re.search(r">\s*\d+ ms\s*<|>\s*\d+\.\d s\s*<", html)
        assert default_formats(html) == []


def test_it_shows_a_ledger_day_as_year_month_day(demo, admin_client):
    from billing.models import LedgerEntry

    entry = LedgerEntry.objects.order_by("pk").first()
    listing = admin_client.get(reverse("admin:billing_ledgerentry_changelist")).content.decode()
    page = admin_client.get(reverse("admin:billing_ledgerentry_change", args=[entry.pk])).content.decode()

    assert re.search(r"class=\"field-posted_on\"><a [^>]*>\d{4}-\d\d-\d\d</a>", listing)
    assert entry.posted_on.isoformat() in page
    assert default_formats(listing) == [] and default_formats(page) == []


MONTH_NAME = re.compile(r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b")


def test_it_labels_every_date_hierarchy_in_the_one_format(demo, admin_client):
    """2026 > 2026-12 > 2026-12-06 in every admin with a date hierarchy, never "December 2026"."""
    drilled = 0
    for model in apps.get_models():
        field = admin.site.get_model_admin(model).date_hierarchy if admin.site.is_registered(model) else None
        value = field and model.objects.filter(**{f"{field}__isnull": False}).values_list(field, flat=True).first()
        if not value:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        year = {f"{field}__year": value.year}
        for query, label in ((year, f"{value:%Y-%m}"), ({**year, f"{field}__month": value.month}, f"{value:%Y-%m-%d}")):
            html = admin_client.get(url, query).content.decode()
            hierarchy = re.search(r'<nav class="toplinks">(.*?)</nav>', html, flags=re.S).group(1)
            assert not MONTH_NAME.search(hierarchy), (url, query, hierarchy)
            assert f">{label}</a>" in hierarchy, (url, query, hierarchy)
        drilled += 1
    assert drilled >= 2
