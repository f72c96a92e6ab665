"""The embedded demo: seed_demo, then every accounts job runs and reports non-zero counts, with
sync-stripe and check-provider-credits talking to the stand-ins Cronhouse serves itself over
loopback, which the outbound guard lets through to that one port only."""

from __future__ import annotations

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from accounts.demo_settings import DEMO_STRIPE_KEY, demo_services_settings
from core.http_guard import DestinationRefused, address_refusal, guarded_request
from jobs.models import JobRun

ISSUE_JOBS = [
    "cleanup-invitations",
    "cleanup-push-subscriptions",
    "purge-error-logs",
    "sync-stripe",
    "check-license-expiration",
    "process-account-deletions",
    "check-low-credits-alerts",
    "check-provider-credits",
    "approve-mature-affiliate-conversions",
]


@pytest.fixture
def demo_services(live_server, settings):
    """The embedded demo's settings, with this test's live server as the site."""
    settings.SITE_URL = live_server.url
    values = demo_services_settings(live_server.url, stripe_configured=False, providers_configured=False)
    for name, value in values.items():
        setattr(settings, name, value)
    settings.ACCOUNTS_ERROR_LOGGING_ENABLED = True
    settings.ACCOUNTS_LICENSES_ENABLED = True
    settings.ACCOUNTS_AFFILIATES_ENABLED = True
    settings.ACCOUNTS_STRIPE_MAX_RETRIES = 0
    return live_server.url


@pytest.mark.django_db(transaction=True)
def test_it_runs_every_accounts_job_on_the_demo_with_non_zero_counts(demo_services, django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "pw-demo-123456")
    as_of = f"{timezone.now():%Y-%m-%d}T12:00:00"
    call_command("seed_jobs", verbosity=0)
    call_command("seed_demo", apps=["accounts"], size="small", as_of=as_of, run_jobs=True, verbosity=0)

    runs = {run.job.name: run for run in JobRun.objects.select_related("job").filter(job__name__in=ISSUE_JOBS)}
    assert sorted(runs) == sorted(ISSUE_JOBS)
    for name, run in runs.items():
        counts = {key: value for key, value in run.summary.items() if isinstance(value, int)}
        assert run.status == JobRun.Status.SUCCEEDED, (name, run.error)
        assert sum(counts.values()) > 0, (name, run.summary)
    stripe = runs["sync-stripe"].summary
    assert {key: stripe[key] for key in ("seen", "updated", "created", "unmatched", "missing_at_stripe")} == {
        "seen": 5,
        "updated": 3,
        "created": 1,
        "unmatched": 1,
        "missing_at_stripe": 1,
    }
    assert "stand-in" in stripe["warnings"][0]  # says it was not Stripe
    providers = runs["check-provider-credits"].summary
    assert providers == {
        "providers": 3,
        "healthy": 1,
        "refused": 1,
        "low_balance": 1,
        "unchecked": 0,
        "admin_messages_queued": 2,
    }


@pytest.mark.django_db(transaction=True)
def test_it_answers_only_the_demo_keys_and_only_in_the_demo(demo_services, settings):
    list_url = f"{demo_services}/demo/stripe/v1/subscriptions"
    assert requests.get(list_url, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
    answer = requests.get(list_url, headers={"Authorization": f"Bearer {DEMO_STRIPE_KEY}"}, timeout=5)
    assert [row["id"] for row in answer.json()["data"]] == [f"sub_demo_{n}" for n in range(1, 6)]
    settings.EMBEDDED_DEMO_SERVICES = False
    assert requests.get(list_url, headers={"Authorization": f"Bearer {DEMO_STRIPE_KEY}"}, timeout=5).status_code == 404


def test_it_lets_loopback_through_on_the_demo_port_only(settings):
    settings.JOBS_HTTP_GUARD_LOOPBACK_PORTS = frozenset({8000})
    assert address_refusal("127.0.0.1", 8000) is None
    assert address_refusal("::1", 8000) is None
    assert "loopback" in address_refusal("127.0.0.1", 5432)
    assert "loopback" in address_refusal("127.0.0.1")
    assert "private" in address_refusal("10.0.0.5", 8000)
    with pytest.raises(DestinationRefused):
        guarded_request("GET", "http://127.0.0.1:6379/")


def test_it_keeps_a_configured_stripe_key_and_providers():
    values = demo_services_settings("http://127.0.0.1:8000", stripe_configured=True, providers_configured=True)
    assert values == {"EMBEDDED_DEMO_SERVICES": True, "JOBS_HTTP_GUARD_LOOPBACK_PORTS": frozenset({8000})}
