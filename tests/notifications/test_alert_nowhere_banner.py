"""The dashboard's banner says when an alert has nowhere to go: a job that alerts, with no
channel routed to it and no default recipient. A routed or paused job is not named."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks

from jobs.models import Job
from notifications.models import AlertChannel, AlertRoute

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client(client, django_user_model, settings):
    settings.JOBS_ALERT_RECIPIENTS = []
    client.force_login(django_user_model.objects.create_superuser("root", "", "pw-123456789"))
    return client


def banner(client) -> dict:
    return client.get("/dashboard/data.json").json()["alerts"]


def test_it_names_the_jobs_whose_alerts_have_nowhere_to_go(root_client, make_job):
    make_job("payouts")
    make_job("charges")
    routed = make_job("reports")
    channel = AlertChannel.objects.create(name="ops", kind=AlertChannel.Kind.EMAIL, recipients="ops@example.com")
    AlertRoute.objects.create(channel=channel, job=routed)

    page = root_client.get("/dashboard/").content.decode()

    expected = "Alerts of jobs with no alert channel have nowhere to go: charges, payouts."
    assert expected in page and 'class="banner bad"' in page
    assert banner(root_client)["nowhere"] is True
    assert {m.id for m in run_checks()} >= {"jobs.W005", "notifications.W010"}


def test_it_shows_no_warning_when_every_alerting_job_has_a_channel(root_client, make_job):
    job = make_job("reports")
    make_job("quiet", notify_on_failure=False)
    paused = make_job("paused-sync")
    Job.objects.filter(pk=paused.pk).update(enabled=False)
    channel = AlertChannel.objects.create(name="ops", kind=AlertChannel.Kind.EMAIL, recipients="ops@example.com")
    AlertRoute.objects.create(channel=channel, app="jobs")
    AlertRoute.objects.create(channel=channel, job=job)

    state = banner(root_client)

    assert state["nowhere"] is False
    assert state["text"].startswith("Every job that alerts has an alert channel")
    assert not {"jobs.W005", "notifications.W010"} & {m.id for m in run_checks()}


def test_it_warns_again_when_the_only_channel_is_made_inactive(root_client, make_job):
    job = make_job("reports")
    channel = AlertChannel.objects.create(name="ops", kind=AlertChannel.Kind.EMAIL, recipients="ops@example.com")
    AlertRoute.objects.create(channel=channel, job=job)
    AlertChannel.objects.filter(pk=channel.pk).update(active=False)

    state = banner(root_client)

    assert state == {
        "text": "Alerts of jobs with no alert channel have nowhere to go: reports. JOBS_ALERT_RECIPIENTS is empty "
        "and no superuser has an e-mail address.",
        "nowhere": True,
    }
