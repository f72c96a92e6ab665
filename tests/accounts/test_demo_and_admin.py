from __future__ import annotations

import pytest
from django.contrib import admin
from django.core.management import call_command

from accounts.job_definitions import JOB_DEFINITIONS
from accounts.models import Account, DeletionRequest
from jobs.models import JobRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def features_on(settings):
    settings.ACCOUNTS_ERROR_LOGGING_ENABLED = True
    settings.ACCOUNTS_LICENSES_ENABLED = True
    settings.ACCOUNTS_AFFILIATES_ENABLED = True


def test_it_seeds_a_demo_on_which_every_accounts_job_does_work(features_on, admin_client):
    call_command("seed_jobs", verbosity=0)
    call_command("seed_demo", apps=["accounts"], size="small", as_of="2025-03-15", run_jobs=True, verbosity=0)

    runs = {
        name: (status, summary)
        for name, status, summary in JobRun.objects.filter(job__name__in=[d.name for d in JOB_DEFINITIONS]).values_list(
            "job__name", "status", "summary"
        )
    }
    assert {status for status, _ in runs.values()} == {"succeeded"}
    summaries = {name: summary for name, (_, summary) in runs.items()}
    assert summaries["cleanup-invitations"] == {"invitations_deleted": 2}
    assert summaries["cleanup-push-subscriptions"] == {"expired_deleted": 1, "unused_deleted": 1}
    assert summaries["purge-error-logs"] == {"error_logs_deleted": 3}
    assert summaries["check-license-expiration"] == {"licenses_expired": 1, "warnings": 3, "messages_queued": 3}
    assert summaries["check-low-credits-alerts"] == {
        "recovered": 0,
        "crossed": 2,
        "messages_queued": 2,
        "admin_messages_queued": 1,  # admin_client's superuser
    }
    assert summaries["approve-mature-affiliate-conversions"] == {"conversions_approved": 3}
    assert summaries["trial-reminders"]["notices"] > 0
    assert summaries["expire-subscriptions"]["trials_expired"] > 0
    assert summaries["process-account-deletions"] == {
        "requests_due": 1,
        "requests_completed": 1,
        "requests_failed": 0,
        "stripe_subscriptions_cancelled": 0,  # the demo has no Stripe
        "rows_deleted": 4,  # its subscription, catalog, membership and the account
        "rows_anonymised": 0,
        "users_deleted": 1,
        "notices_queued": 2,  # the account's e-mail and the owner who asked
    }
    assert sorted(DeletionRequest.objects.values_list("status", flat=True)) == [
        "cancelled",
        "completed",
        "completed",
        "pending",
    ]
    assert Account.objects.count() == 11  # one deleted by process-account-deletions

    # Every accounts admin page shows, list and change page, on these rows.
    for model in admin.site._registry:
        if model._meta.app_label != "accounts":
            continue
        url = f"/admin/accounts/{model._meta.model_name}/"
        assert admin_client.get(url).status_code == 200, url
        first = model.objects.first()
        assert first is not None, f"the demo has no {model._meta.model_name}"
        assert admin_client.get(f"{url}{first.pk}/change/").status_code == 200, url


def test_it_leaves_gated_jobs_out_of_seeding_while_their_feature_is_off(settings):
    from jobs.models import Job

    settings.ACCOUNTS_ERROR_LOGGING_ENABLED = False
    settings.ACCOUNTS_LICENSES_ENABLED = False
    settings.ACCOUNTS_AFFILIATES_ENABLED = True
    out = __import__("io").StringIO()
    call_command("seed_jobs", stdout=out)

    names = set(Job.objects.values_list("name", flat=True))
    assert "approve-mature-affiliate-conversions" in names and "cleanup-invitations" in names
    assert not names & {"purge-error-logs", "check-license-expiration"}
    text = out.getvalue()
    assert "left out  purge-error-logs: ACCOUNTS_ERROR_LOGGING_ENABLED is off" in text
    assert "left out  check-license-expiration: ACCOUNTS_LICENSES_ENABLED is off" in text


def test_it_never_touches_a_gated_job_an_admin_kept_after_the_feature_went_off(settings):
    from jobs.models import Job

    settings.ACCOUNTS_LICENSES_ENABLED = True
    call_command("seed_jobs", verbosity=0)
    kept = Job.objects.get(name="check-license-expiration")  # the admin's edit: no schedule column to update()
    kept.cron_expression, kept.enabled = "30 6 * * *", False
    kept.save()
    settings.ACCOUNTS_LICENSES_ENABLED = False
    call_command("seed_jobs", verbosity=0)
    settings.ACCOUNTS_LICENSES_ENABLED = True
    call_command("seed_jobs", verbosity=0)

    job = Job.objects.get(name="check-license-expiration")
    assert (job.cron_expression, job.enabled) == ("30 6 * * *", False)
