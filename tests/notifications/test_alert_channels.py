"""Alert channels against real local receivers: the Slack message, the signed webhook, the
PagerDuty trigger and resolve, retries after a 5xx, and no secret in a log line or admin page."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from core.crypto import secret_encrypt
from jobs.models import Job, JobRun
from jobs.running import runner
from notifications.channels.sending import alert_deliveries_sweep
from notifications.models import (
    AlertChannel,
    AlertDelivery,
    AlertRoute,
    Notification,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.webhooks import webhook_signature_verify, webhooks_retry_due
from tests.process_group import free_port

pytestmark = pytest.mark.django_db
Kind = AlertChannel.Kind
Delivered = AlertDelivery.Status.DELIVERED
SLACK_PATH = "/services/T0CRONHOUSE/B0ALERTS/xoxSecretPathToken42"
ROUTING_KEY = "R0UTINGKEYpagerduty0000000000042"


def make_channel(kind: str, name: str = "ops", *, secret: str = "", **fields) -> AlertChannel:
    return AlertChannel.objects.create(name=name, kind=kind, secret=secret_encrypt(secret), **fields)


def route(channel: AlertChannel, **target) -> AlertRoute:
    return AlertRoute.objects.create(channel=channel, **target)


@pytest.fixture
def run_once(django_capture_on_commit_callbacks):
    """Trigger and execute one run in this process; alerts are recorded as in production."""

    def run(job: Job) -> JobRun:
        with django_capture_on_commit_callbacks(execute=True):
            result = runner.run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False)
            return runner.run_execute(result.run.pk, dispatch_retry=False)

    return run


def sweep(after_seconds: float = 0) -> dict:
    """process-notifications' alert sweep, ``after_seconds`` from now."""
    return alert_deliveries_sweep(now=timezone.now() + timedelta(seconds=after_seconds))


def test_it_posts_a_slack_message_with_its_text_and_blocks(make_job, receiver, allow_loopback, run_once, settings):
    settings.SITE_URL = "https://cron.example.com"
    channel = make_channel(Kind.SLACK, secret=receiver.url(SLACK_PATH))
    job = make_job("nightly-report", command="test_fail_job")
    route(channel, job=job)

    run = run_once(job)
    sweep()

    [request] = receiver.requests
    assert request.path == SLACK_PATH
    message = json.loads(request.body)
    link = f"https://cron.example.com/admin/jobs/jobrun/{run.pk}/change/"
    assert message["text"] == f":red_circle: Job nightly-report failed (run #{run.pk}, failed): {link}"
    [block] = message["blocks"]
    assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    assert block["text"]["text"].startswith(f"*:red_circle: Job nightly-report failed (run #{run.pk}, failed)*\n> ")
    assert block["text"]["text"].endswith(f"<{link}|Open in Cronhouse>")
    assert AlertDelivery.objects.get().status == Delivered


def test_it_signs_a_webhook_channel_alert_with_the_endpoint_secret(make_job, receiver, allow_loopback, run_once):
    endpoint = WebhookEndpoint.objects.create(name="incidents", url=receiver.url("/cronhouse"), events=[])
    channel = make_channel(Kind.WEBHOOK, endpoint=endpoint)
    job = make_job("nightly-report", command="test_fail_job")
    route(channel, job=job)

    run_once(job)
    webhooks_retry_due()

    [request] = receiver.requests
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert webhook_signature_verify(secret=endpoint.secret, header=headers["cronhouse-signature"], body=request.body)
    document = json.loads(request.body)
    assert (headers["cronhouse-event"], document["event"]) == ("job.alert", "job.alert")
    assert document["data"]["alert"] == "failed" and document["data"]["job"] == "nightly-report"
    assert document["data"]["incident_key"] == "cronhouse:nightly-report:failing"
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.DELIVERED


def test_it_triggers_then_resolves_a_pagerduty_incident_with_one_dedup_key(
    make_job, receiver, allow_loopback, run_once
):
    receiver.route("/v2/enqueue", 202, body=b'{"status":"success","dedup_key":"x"}')
    channel = make_channel(Kind.PAGERDUTY, secret=ROUTING_KEY, url=receiver.url("/v2/enqueue"))
    job = make_job("nightly-report", command="test_fail_job")
    route(channel, job=job)

    failed = run_once(job)
    sweep()
    Job.objects.filter(pk=job.pk).update(command="test_job")
    job.refresh_from_db()
    run_once(job)
    sweep()

    trigger, resolve = (json.loads(r.body) for r in receiver.requests)
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["routing_key"] == resolve["routing_key"] == ROUTING_KEY
    assert trigger["dedup_key"] == resolve["dedup_key"] == "cronhouse:nightly-report:failing"
    assert trigger["payload"]["summary"] == f"Job nightly-report failed (run #{failed.pk}, failed)"
    assert (trigger["payload"]["severity"], trigger["payload"]["source"]) == ("error", "cronhouse")
    assert trigger["payload"]["component"] == "nightly-report"
    assert set(resolve) == {"routing_key", "event_action", "dedup_key"}
    assert list(AlertDelivery.objects.values_list("status", flat=True)) == [Delivered, Delivered]
    # The routing key is added as the event leaves: the stored payload does not hold it.
    assert ROUTING_KEY not in json.dumps(list(AlertDelivery.objects.values_list("payload", flat=True)))


def test_it_retries_a_slack_alert_after_a_5xx(make_job, receiver, allow_loopback, run_once):
    receiver.route(SLACK_PATH, 503, body=b"service unavailable")
    channel = make_channel(Kind.SLACK, secret=receiver.url(SLACK_PATH))
    job = make_job("nightly-report", command="test_fail_job")
    route(channel, job=job)

    run_once(job)
    first = sweep()
    delivery = AlertDelivery.objects.get()
    waited = delivery.next_attempt_at - timezone.now()
    early = sweep(after_seconds=5)
    receiver.route(SLACK_PATH, 200, body=b"ok")
    second = sweep(after_seconds=31)

    assert (first["retrying"], early["attempted"], second["delivered"]) == (1, 0, 1)
    assert (delivery.status, delivery.response_status) == (AlertDelivery.Status.RETRYING, 503)
    assert delivery.last_error == "HTTP 503 from the Slack-compatible incoming webhook"
    assert timedelta(seconds=25) < waited <= timedelta(seconds=30)
    assert len(receiver.requests) == 2 and receiver.requests[0].body == receiver.requests[1].body
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivered, 2)


def test_it_holds_a_resolve_until_its_trigger_is_delivered(make_job, receiver, allow_loopback, run_once):
    receiver.route("/v2/enqueue", 500)
    channel = make_channel(Kind.PAGERDUTY, secret=ROUTING_KEY, url=receiver.url("/v2/enqueue"))
    job = make_job("nightly-report", command="test_fail_job")
    route(channel, job=job)
    run_once(job)
    sweep()
    Job.objects.filter(pk=job.pk).update(command="test_job")
    job.refresh_from_db()
    run_once(job)

    sweep()  # the trigger waits for its retry; the resolve waits for the trigger
    assert [json.loads(r.body)["event_action"] for r in receiver.requests] == ["trigger"]
    receiver.route("/v2/enqueue", 202)
    sweep(after_seconds=31)
    sweep(after_seconds=31)

    actions = [json.loads(r.body)["event_action"] for r in receiver.requests]
    assert actions == ["trigger", "trigger", "resolve"]


def test_it_keeps_the_channel_secret_out_of_logs_errors_and_admin_pages(
    make_job, admin_client, allow_loopback, run_once, caplog
):
    slack_url = f"http://127.0.0.1:{free_port()}{SLACK_PATH}"  # nothing listens: the attempt fails
    form = {
        "name": "ops-chat",
        "kind": "slack",
        "active": "on",
        "new_secret": slack_url,
        "routes-TOTAL_FORMS": "0",
        "routes-INITIAL_FORMS": "0",
        "routes-MIN_NUM_FORMS": "0",
        "routes-MAX_NUM_FORMS": "1000",
    }
    response = admin_client.post("/admin/notifications/alertchannel/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = AlertChannel.objects.get()
    job = make_job("nightly-report", command="test_fail_job")
    route(channel, job=job)

    with caplog.at_level(logging.DEBUG):
        run_once(job)
        sweep()
    delivery = AlertDelivery.objects.get()
    pages = [
        admin_client.get("/admin/notifications/alertchannel/").content.decode(),
        admin_client.get(f"/admin/notifications/alertchannel/{channel.pk}/change/").content.decode(),
        admin_client.get("/admin/notifications/alertdelivery/").content.decode(),
        admin_client.get(f"/admin/notifications/alertdelivery/{delivery.pk}/change/").content.decode(),
    ]

    assert delivery.status == AlertDelivery.Status.RETRYING and "ConnectionError" in delivery.last_error
    assert "xoxSecretPathToken42" not in channel.secret  # encrypted at rest
    for text in [delivery.last_error, *pages, *(record.getMessage() for record in caplog.records)]:
        assert "xoxSecretPathToken42" not in text
    assert "incoming webhook (URL hidden)" in pages[0]


def test_it_keeps_the_stored_secret_when_the_form_leaves_it_empty(admin_client, allow_loopback):
    channel = make_channel(Kind.PAGERDUTY, secret=ROUTING_KEY, url="https://events.pagerduty.com/v2/enqueue")
    stored = channel.secret
    form = {
        "name": "pager",
        "kind": "pagerduty",
        "active": "on",
        "url": "https://events.pagerduty.com/v2/enqueue",
        "new_secret": "",
        "routes-TOTAL_FORMS": "0",
        "routes-INITIAL_FORMS": "0",
        "routes-MIN_NUM_FORMS": "0",
        "routes-MAX_NUM_FORMS": "1000",
    }
    response = admin_client.post(f"/admin/notifications/alertchannel/{channel.pk}/change/", form)

    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.secret) == ("pager", stored)


def test_it_refuses_a_metadata_address_as_a_slack_url(admin_client):
    form = {
        "name": "sneaky",
        "kind": "slack",
        "active": "on",
        "new_secret": "http://169.254.169.254/latest/meta-data/",
        "routes-TOTAL_FORMS": "0",
        "routes-INITIAL_FORMS": "0",
        "routes-MIN_NUM_FORMS": "0",
        "routes-MAX_NUM_FORMS": "1000",
    }
    page = admin_client.post("/admin/notifications/alertchannel/add/", form).content.decode()

    assert "The outbound guard refuses this URL: 169.254.169.254 is a cloud metadata address." in page
    assert "latest/meta-data" not in page
    assert not AlertChannel.objects.exists()


def test_it_sends_a_test_alert_from_the_admin_action(admin_client, receiver, allow_loopback):
    receiver.route("/v2/enqueue", 202)
    slack = make_channel(Kind.SLACK, name="chat", secret=receiver.url(SLACK_PATH))
    pager = make_channel(Kind.PAGERDUTY, name="pager", secret=ROUTING_KEY, url=receiver.url("/v2/enqueue"))
    team = AlertChannel.objects.create(name="team", kind=Kind.EMAIL, recipients="team@example.com")
    selected = [slack.pk, pager.pk, team.pk]

    admin_client.post("/admin/notifications/alertchannel/", {"action": "send_test", "_selected_action": selected})
    sweep()
    sweep()

    bodies = {r.path: [] for r in receiver.requests}
    for request in receiver.requests:
        bodies[request.path].append(json.loads(request.body))
    [chat] = bodies[SLACK_PATH]
    assert chat["text"].startswith(":wave: Test alert from Cronhouse to channel chat")
    trigger, resolve = bodies["/v2/enqueue"]
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] and trigger["payload"]["severity"] == "info"
    [mail] = Notification.objects.all()
    assert (mail.recipient, mail.template, mail.context["label"]) == (
        "team@example.com",
        "notifications/test_message",
        "Alert channel team",
    )


def test_it_records_a_repeated_alert_once_per_channel(make_job, django_capture_on_commit_callbacks):
    from notifications.channels.delivery import alert_deliveries_record
    from notifications.channels.messages import Alert

    endpoint = WebhookEndpoint.objects.create(name="incidents", url="https://hooks.example.com/x", events=[])
    channels = [
        make_channel(Kind.WEBHOOK, name="signed", endpoint=endpoint),
        make_channel(Kind.SLACK, name="chat", secret="https://hooks.slack.com/services/T/B/x"),
        make_channel(Kind.PAGERDUTY, name="pager", secret=ROUTING_KEY, url="https://events.pagerduty.com/v2/enqueue"),
    ]
    alert = Alert(kind="failed", job_name="nightly-report", job_id=None, key="41", context={"run_id": 41})

    with django_capture_on_commit_callbacks():  # recorded, not sent
        first = alert_deliveries_record(channels=channels, alert=alert)
        again = alert_deliveries_record(channels=channels, alert=alert)

    assert (first, again) == (3, 0)
    assert (WebhookDelivery.objects.count(), AlertDelivery.objects.count()) == (1, 2)


def test_it_opens_and_resolves_a_late_incident_on_pagerduty(make_job, receiver, allow_loopback):
    from notifications.alerts.operations import job_lateness_alert

    receiver.route("/v2/enqueue", 202)
    channel = make_channel(Kind.PAGERDUTY, secret=ROUTING_KEY, url=receiver.url("/v2/enqueue"))
    job = make_job("nightly-report")
    route(channel, job=job)
    slot = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=10)

    job_lateness_alert(job=job, late=True, slot=slot, now=timezone.now())
    job_lateness_alert(job=job, late=False, slot=slot, now=timezone.now())
    sweep()

    trigger, resolve = (json.loads(r.body) for r in receiver.requests)
    assert (trigger["event_action"], trigger["payload"]["severity"]) == ("trigger", "warning")
    assert trigger["payload"]["summary"].startswith("Job nightly-report is late: its ")
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": trigger["dedup_key"]}
    assert trigger["dedup_key"] == "cronhouse:nightly-report:late"
