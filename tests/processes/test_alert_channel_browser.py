"""In headless Chromium: a staff user adds a Slack channel, sends a test, routes a job to it, and
the job's failure arrives on the local receiver."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from jobs.models import Job, JobRun
from jobs.running import runner
from notifications.channels.sending import alert_deliveries_sweep
from notifications.models import AlertChannel, AlertRoute
from tests.notifications.conftest import Receiver
from tests.processes.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-alert-channels-123456789"
SLACK_PATH = "/services/T0BROWSER/B0TEST/browserSecret99"


@pytest.fixture
def chat(settings):
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True
    server = Receiver()
    yield server
    server.stop()


def texts(receiver: Receiver) -> list[str]:
    return [json.loads(r.body)["text"] for r in receiver.requests]


def test_it_adds_a_channel_sends_a_test_and_routes_a_job_to_it(
    page,  # noqa: F811
    live_server,
    django_user_model,
    chat,
    settings,
):
    settings.SITE_URL = live_server.url
    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    job = Job(name="nightly-report", command="test_fail_job", cron_expression="0 3 * * *")
    job.full_clean()
    job.save()
    log_in(page, live_server, "ops", PASSWORD, next_url="/admin/")

    page.goto(f"{live_server.url}/admin/notifications/alertchannel/add/")
    page.fill("#id_name", "ops-chat")
    page.select_option("#id_kind", "slack")
    page.fill("#id_new_secret", chat.url(SLACK_PATH))
    page.click("input[name=_save]")
    expect(page.locator("#result_list")).to_contain_text("incoming webhook (URL hidden)")
    assert "browserSecret99" not in page.content()

    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "send_test")
    page.click("button[name=index]")
    expect(page.locator(".messagelist")).to_contain_text("Test alert queued to 1 active channel(s).")
    alert_deliveries_sweep()
    assert texts(chat) == [f":wave: Test alert from Cronhouse to channel ops-chat: {live_server.url}/dashboard/"]

    channel = AlertChannel.objects.get()
    page.goto(f"{live_server.url}/admin/notifications/alertchannel/{channel.pk}/change/")
    page.fill("#id_routes-0-job", str(job.pk))
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert AlertRoute.objects.filter(channel=channel, job=job).exists()

    result = runner.run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False)
    runner.run_execute(result.run.pk, dispatch_retry=False)
    alert_deliveries_sweep()
    assert texts(chat)[1].startswith(f":red_circle: Job nightly-report failed (run #{result.run.pk}, failed)")
