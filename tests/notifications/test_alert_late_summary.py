"""After downtime: ten thousand jobs found late at once make one summary per destination, not
one message per job, and so does their catching up; a few late jobs still alert one by one."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from core.crypto import secret_encrypt
from jobs.models import Job, JobOperatorGroup
from jobs.running.maintenance import jobs_process
from notifications.channels.sending import alert_deliveries_sweep
from notifications.email.mailer import notifications_process
from notifications.models import AlertChannel, AlertDelivery, AlertRoute, Notification
from tests.fleet import fleet_create

pytestmark = pytest.mark.django_db
Kind = AlertChannel.Kind
FLEET = 10_000
ROUTING_KEY = "R0UTINGKEYsummary000000000000000"


@pytest.fixture
def process(django_capture_on_commit_callbacks):
    def call(**kwargs) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            return jobs_process(**kwargs)

    return call


@pytest.fixture
def destinations(receiver, allow_loopback, settings, outbox):
    """A Slack channel for an operator group, PagerDuty and an e-mail list for jobs by name, and
    two default recipients for every job routed nowhere."""
    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com", "oncall@example.com"]
    receiver.route("/v2/enqueue", 202)
    return {
        "slack": AlertChannel.objects.create(
            name="night-chat", kind=Kind.SLACK, secret=secret_encrypt(receiver.url("/services/T/B/night"))
        ),
        "pagerduty": AlertChannel.objects.create(
            name="pager", kind=Kind.PAGERDUTY, secret=secret_encrypt(ROUTING_KEY), url=receiver.url("/v2/enqueue")
        ),
        "email": AlertChannel.objects.create(name="billing-list", kind=Kind.EMAIL, recipients="billing@example.com"),
    }


def route_fleet(jobs: list[Job], destinations: dict) -> None:
    night = Group.objects.create(name="night-ops")
    JobOperatorGroup.objects.bulk_create([JobOperatorGroup(job=job, group=night) for job in jobs[:2000]])
    AlertRoute.objects.create(channel=destinations["slack"], group=night)
    AlertRoute.objects.bulk_create(
        [AlertRoute(channel=destinations["pagerduty"], job=job) for job in jobs[1500:2500]]
        + [AlertRoute(channel=destinations["email"], job=job) for job in jobs[2500:3000]]
    )


def messages_sent(receiver, outbox, now=None) -> list[str]:
    """Every message that left by ``now``: chat and incident requests, then e-mails, one line each."""
    alert_deliveries_sweep(now=now or timezone.now())
    notifications_process(now=now, max_seconds=60)
    return [f"{r.path}: {r.body[:80]!r}" for r in receiver.requests] + [f"mail {m.to}: {m.subject}" for m in outbox]


def catch_up(now) -> None:
    """What the leading beat does on its return: every job's next slot moves past now."""
    Job.objects.update(next_fire_at=now + timedelta(hours=20), late_at=now + timedelta(hours=21))


def test_it_sends_one_summary_per_destination_for_ten_thousand_jobs_late_after_downtime(
    destinations, receiver, outbox, process
):
    jobs = fleet_create(FLEET, prefix="fleet", late_every=1)  # every job missed its slot an hour ago
    route_fleet(jobs, destinations)
    now = timezone.now()

    found = process(now=now)
    late_messages = messages_sent(receiver, outbox)
    receiver.requests.clear()
    outbox.clear()
    catch_up(now)
    ended = process(now=now + timedelta(minutes=1))
    recovered_messages = messages_sent(receiver, outbox, now=now + timedelta(minutes=1))

    assert (found["late_started"], ended["late_recovered"]) == (FLEET, FLEET)
    # Slack, PagerDuty, the e-mail list and the two default recipients: one message each.
    assert len(late_messages) == 5, late_messages
    assert len(recovered_messages) == 5, recovered_messages
    slack = json.loads(next(r.body for r in receiver.requests if r.path.startswith("/services/")))
    assert slack["text"].startswith(":large_green_circle: 2000 jobs are no longer late")
    subjects = sorted(m.subject for m in outbox)
    assert subjects == [
        "[Cronhouse] 500 jobs are no longer late",
        "[Cronhouse] 7000 jobs are no longer late",
        "[Cronhouse] 7000 jobs are no longer late",
    ]


def test_it_names_the_jobs_and_opens_one_incident_in_a_summary(destinations, receiver, outbox, process):
    jobs = fleet_create(60, prefix="fleet", late_every=1)
    route_fleet(jobs, destinations)  # Slack: all 60 (the group's first 2000); PagerDuty: none

    process(now=timezone.now())
    messages_sent(receiver, outbox)

    [chat] = [json.loads(r.body) for r in receiver.requests if r.path.startswith("/services/")]
    text = chat["blocks"][0]["text"]["text"]
    assert text.startswith(
        "*:hourglass: 60 jobs are late: their scheduled runs have not started*\n- fleet-00001 (slot "
    )
    assert "- fleet-00040 (slot " in text and "fleet-00041" not in text
    assert "... and 20 more" in text
    assert AlertDelivery.objects.filter(channel=destinations["slack"]).count() == 1
    assert not Notification.objects.filter(template="job_alerts/late").exists()


def test_it_resolves_the_summary_incident_on_pagerduty(destinations, receiver, outbox, process):
    jobs = fleet_create(30, prefix="fleet", late_every=1)
    AlertRoute.objects.bulk_create([AlertRoute(channel=destinations["pagerduty"], job=job) for job in jobs])
    now = timezone.now()

    process(now=now)
    alert_deliveries_sweep()
    catch_up(now)
    process(now=now + timedelta(minutes=1))
    alert_deliveries_sweep(now=now + timedelta(minutes=1))

    trigger, resolve = (json.loads(r.body) for r in receiver.requests if r.path == "/v2/enqueue")
    assert (trigger["event_action"], trigger["dedup_key"]) == ("trigger", "cronhouse:late-summary")
    assert trigger["payload"]["summary"] == "30 jobs are late: their scheduled runs have not started"
    assert trigger["payload"]["custom_details"]["count"] == 30
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "cronhouse:late-summary"}


def test_it_still_alerts_each_job_when_only_a_few_are_late(destinations, receiver, outbox, process, settings):
    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com"]
    fleet_create(3, prefix="fleet", late_every=1)
    now = timezone.now()

    process(now=now)
    catch_up(now)
    process(now=now + timedelta(minutes=1))

    templates = sorted(Notification.objects.values_list("template", flat=True))
    assert templates == ["job_alerts/late"] * 3 + ["job_alerts/late_recovered"] * 3


def test_it_says_no_longer_late_only_where_a_late_alert_went(destinations, receiver, outbox, process, settings):
    settings.NOTIFICATIONS_LATE_SUMMARY_AFTER = 5
    jobs = fleet_create(6, prefix="fleet", late_every=1)
    now = timezone.now()
    process(now=now)  # six at once: one summary e-mail to each default recipient
    Job.objects.filter(pk=jobs[0].pk).update(next_fire_at=now + timedelta(hours=20), late_at=now + timedelta(hours=21))

    process(now=now + timedelta(minutes=1))  # one recovers alone: it had no late alert of its own

    templates = sorted(Notification.objects.values_list("template", flat=True))
    assert templates == ["job_alerts/late_summary"] * 2


def test_it_routes_many_jobs_at_once_as_it_routes_each(make_job):
    from notifications.channels.routing import alert_channels_for, alert_channels_for_many

    ops = Group.objects.create(name="ops")
    channels = [
        AlertChannel.objects.create(name=f"list-{n}", kind=Kind.EMAIL, recipients=f"l{n}@example.com") for n in range(4)
    ]
    jobs = [make_job(f"job-{n}") for n in range(5)]
    JobOperatorGroup.objects.create(job=jobs[1], group=ops)
    AlertRoute.objects.create(channel=channels[0], job=jobs[0])
    AlertRoute.objects.create(channel=channels[1], group=ops)
    AlertRoute.objects.create(channel=channels[2], app="jobs")  # the test commands' app: every job
    AlertRoute.objects.create(channel=channels[3], job=jobs[2])
    AlertChannel.objects.filter(pk=channels[3].pk).update(active=False)

    many = alert_channels_for_many(jobs)

    for job in jobs:
        assert many[job.pk] == alert_channels_for(job), job.name
    assert [c.name for c in many[jobs[1].pk]] == ["list-1", "list-2"]


def test_it_sends_one_signed_webhook_event_for_a_summary(make_job, settings, django_capture_on_commit_callbacks):
    from notifications.alerts.late_summary import late_summary_send
    from notifications.models import WebhookDelivery, WebhookEndpoint

    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com"]
    endpoint = WebhookEndpoint.objects.create(name="incidents", url="https://hooks.example.com/x", events=[])
    channel = AlertChannel.objects.create(name="signed", kind=Kind.WEBHOOK, endpoint=endpoint)
    jobs = [make_job(f"job-{n}") for n in range(12)]
    AlertRoute.objects.create(channel=channel, app="jobs")
    now = timezone.now()

    with django_capture_on_commit_callbacks():  # recorded, not sent
        first = late_summary_send(changes=[(job, now - timedelta(hours=1)) for job in jobs], late=True, now=now)
        again = late_summary_send(changes=[(job, now - timedelta(hours=1)) for job in jobs], late=True, now=now)

    [delivery] = WebhookDelivery.objects.all()
    assert (first, again) == (1, 0)
    assert (delivery.event, delivery.payload["alert"]) == ("job.alert", "late_summary")
    assert delivery.payload["summary"] == "12 jobs are late: their scheduled runs have not started"
    assert [job["name"] for job in delivery.payload["details"]["jobs"]][:2] == ["job-0", "job-1"]
