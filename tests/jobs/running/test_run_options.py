"""Runs with options ("Run with options…", the API's ``options``): as of a date or a slot, a dry run
and the command's own options, read by the command's own parser before anything is recorded."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from jobs.models import AuditEntry, Backfill, JobRun, WebhookHandler
from jobs.running.run_requests import RunOptionsRefused, run_request
from jobs.running.runner import run_execute
from tests.jobs.billing_jobs import build, charges_job_create  # noqa: F401  (build: a fixture)

pytestmark = pytest.mark.django_db


def options_url(job) -> str:
    return reverse("jobs:job-run-options", args=[job.name])


def test_it_runs_with_as_of_a_dry_run_and_a_command_option_and_shows_them_on_the_run(staff_client, make_job):
    job = make_job("nightly")
    response = staff_client.post(
        options_url(job), {"as_of": "2026-03-01", "dry_run": "on", "command_options": '{"report": "march"}'}
    )
    run = JobRun.objects.get(job=job)
    assert response.status_code == 302 and response["Location"] == reverse("jobs:run", args=[run.pk])
    as_of = "2026-03-01T00:00:00+00:00"
    assert run.options == {"as_of": as_of, "dry_run": True, "command_options": {"report": "march"}}
    assert run.triggered_by == "manual" and run.triggered_by_user == staff_client.user
    entry = AuditEntry.objects.get(action="run")
    assert entry.changes["options"] == [None, run.options] and entry.changes["run"] == [None, run.pk]

    finished = run_execute(run.pk)
    assert finished.status == JobRun.Status.SUCCEEDED
    assert finished.summary["as_of"] == "2026-03-01T00:00:00+00:00" and finished.summary["report"] == ["march"]
    assert finished.summary["dry_run"] is True

    page = staff_client.get(reverse("jobs:run", args=[run.pk])).content.decode()
    assert "2026-03-01 00:00:00 UTC" in page and "--report=march" in page and "dry run" in page
    history = staff_client.get(reverse("jobs:job", args=[job.name])).content.decode()
    assert "as of 2026-03-01 00:00:00 UTC · dry run · --report=march" in history


def test_it_refuses_an_option_the_commands_parser_does_not_declare_and_records_nothing(staff_client, make_job):
    job = make_job("nightly")
    response = staff_client.post(options_url(job), {"command_options": '{"shell": "rm -rf /"}'})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Unknown option &#x27;shell&#x27; for test_job" in page and "Valid options:" in page
    assert not JobRun.objects.exists() and not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"as_of": "2026-13-01"}, "expected a date"),
        ({"command_options": '{"settings": "other"}'}, "Unknown option"),
        ({"command_options": '{"warn": ["--settings=x"]}'}, "may not start with"),
        ({"command_options": '["report"]'}, "JSON object"),
        ({"command_options": '{"as_of": "2026-01-01"}'}, "fields above"),
    ],
)
def test_it_refuses_what_no_run_may_have_with_a_form_error(staff_client, make_job, fields, words):
    job = make_job("nightly")
    response = staff_client.post(options_url(job), fields)
    assert response.status_code == 400 and words in response.content.decode()
    assert not JobRun.objects.exists()


def test_it_refuses_as_of_and_dry_run_to_a_command_that_does_not_declare_them(make_job, superuser):
    job = make_job("sessions", command="clearsessions")
    for options in ({"as_of": "2026-03-01"}, {"dry_run": True}):
        with pytest.raises(RunOptionsRefused, match="unrecognized arguments"):
            run_request(job=job, who=superuser, options=options)
    assert not JobRun.objects.exists()


def test_it_refuses_options_to_a_webhook_job(make_job, superuser):
    handler = WebhookHandler.objects.create(name="hook", url="https://example.com/hook")
    job = make_job("hooked", command="", webhook_handler=handler)
    with pytest.raises(RunOptionsRefused, match="takes no run options"):
        run_request(job=job, who=superuser, options={"dry_run": True})
    assert not JobRun.objects.exists()


def test_it_refuses_the_form_to_someone_who_may_not_run_the_job_and_audits_it(client, django_user_model, make_job):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-123456", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_jobrun"))
    client.force_login(viewer)
    job = make_job("nightly")
    assert client.post(options_url(job), {"dry_run": "on"}).status_code == 403
    assert not JobRun.objects.exists()
    assert AuditEntry.objects.get().refused


def test_it_offers_the_jobs_latest_slots_as_as_of_choices(staff_client, make_job):
    job = make_job("nightly")
    slot = "2026-11-23T06:00:00+00:00"
    JobRun.objects.create(job=job, triggered_by="schedule", status="succeeded", scheduled_for=slot)
    page = staff_client.get(options_url(job)).content.decode()
    assert f'<option value="{slot}">2026-11-23 06:00:00 UTC</option>' in page


def test_it_previews_a_backfill_as_a_dry_run_of_each_slot_writing_nothing(
    staff_client,
    build,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    from billing.models import LedgerEntry

    job = charges_job_create()
    build.lease(rent="1200.00", due_day=5, start="2024-06-01", end="2040-05-31")
    url = reverse("jobs:backfill-new", args=[job.name])
    staff_client.post(url, {"start": "2025-01-01", "end": "2025-02-28", "confirm": "dry_run"})
    backfill = Backfill.objects.get()
    assert backfill.dry_run
    while (queued := JobRun.objects.filter(status=JobRun.Status.QUEUED).first()) is not None:
        assert queued.options["dry_run"] is True and queued.backfill_id == backfill.pk
        with django_capture_on_commit_callbacks(execute=True):
            run_execute(queued.pk)
    assert not LedgerEntry.objects.exists()
    runs = list(JobRun.objects.order_by("pk"))
    assert [run.options["as_of"][:10] for run in runs] == ["2025-01-01", "2025-02-01"]
    page = staff_client.get(reverse("jobs:backfill", args=[backfill.pk])).content.decode()
    assert "dry run" in page and "would " in page and "Now run these slots for real" in page
    run_page = staff_client.get(reverse("jobs:run", args=[runs[0].pk])).content.decode()
    assert f"backfill #{backfill.pk}</a>, slot 2025-01-01 06:00:00 UTC" in run_page
    assert date(2025, 1, 1).isoformat() in runs[0].options["as_of"]


def test_it_marks_a_dry_run_and_its_options_in_the_admins_lists(staff_client, make_job):
    job = make_job("nightly")
    staff_client.post(options_url(job), {"as_of": "2026-03-01", "dry_run": "on"})
    assert JobRun.objects.get().options["dry_run"] is True
    listing = staff_client.get("/admin/jobs/jobrun/").content.decode()
    assert "queued (dry run)" in listing and "Manual · as of 2026-03-01 00:00:00 UTC · dry run" in listing
    inline = staff_client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()
    assert "as of 2026-03-01 00:00:00 UTC · dry run" in inline
