"""The dashboard's health: beat, workers, broker, queue and late jobs as /health/ judges them,
and where job alerts go (JOBS_ALERT_RECIPIENTS, else the superusers, else a banner and jobs.W005)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from jobs.models import Job, JobRun
from jobs.operations.checks import check_alert_recipients, check_alert_routing
from jobs.running.runner import run_execute, run_trigger
from jobs.scheduling.leader import beat_heartbeat_write
from notifications.email.mailer import notifications_process
from tests.scheduling import owe_since

pytestmark = pytest.mark.django_db


def health_items(client) -> dict:
    return {item["name"]: item for item in client.get("/dashboard/data.json").json()["health"]}


def test_it_shows_each_health_item_on_the_page_and_in_its_refresh(staff_client, make_job, settings):
    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com"]
    now = timezone.now()
    beat_heartbeat_write(now=now - timedelta(seconds=30))
    job = make_job("recent")
    Job.objects.filter(pk=job.pk).update(last_run_at=now - timedelta(seconds=50))
    waiting = make_job("waiting")
    run = JobRun.objects.create(job=waiting, triggered_by="manual", status=JobRun.Status.QUEUED)
    JobRun.objects.filter(pk=run.pk).update(created_at=now - timedelta(seconds=90))
    owe_since(make_job("late-job", cron_expression="0 * * * *"), now - timedelta(days=2))

    page = staff_client.get("/dashboard/").content.decode()
    items = health_items(staff_client)
    assert re.match(r"3\d\.\d s ago", items["beat"]["text"]) and items["beat"]["ok"]
    assert re.match(r"5\d\.\d s ago", items["workers"]["text"]) and items["workers"]["ok"]
    assert items["broker"]["ok"]
    assert re.match(r"1, oldest waiting 1 min 3\d s", items["queue"]["text"])
    assert items["late_jobs"]["text"] == "1"
    for item in items.values():
        assert f'data-health="{item["name"]}"' in page and item["label"] in page
    assert "1, oldest waiting" in page and 'id="alerts" class="banner" data-field="alerts" hidden' in page


def test_it_says_when_beat_and_workers_were_never_seen(staff_client, settings):
    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com"]
    items = health_items(staff_client)
    assert (items["beat"]["text"], items["beat"]["ok"]) == ("no heartbeat", False)
    assert (items["workers"]["text"], items["workers"]["ok"]) == ("never seen", False)
    assert items["queue"]["text"] == "none waiting"


def test_it_shows_a_banner_and_warns_when_alerts_have_nowhere_to_go(client, django_user_model, settings, make_job):
    settings.JOBS_ALERT_RECIPIENTS = []
    make_job("nightly-report")
    user = django_user_model.objects.create_superuser("root", "", "pw-123456789")
    client.force_login(user)
    page = client.get("/dashboard/").content.decode()
    assert "Alerts of jobs with no alert channel have nowhere to go: nightly-report." in page
    assert 'class="banner bad"' in page and "hidden>" not in page.split('id="alerts"')[1][:200]
    assert [m.id for m in check_alert_recipients(None)] == ["jobs.W005"]


def test_it_says_alerts_go_to_the_superusers_when_the_setting_is_empty(staff_client, django_user_model, settings):
    settings.JOBS_ALERT_RECIPIENTS = []
    django_user_model.objects.create_superuser("second", "second@example.com", "pw-123456789")
    expected = "alerts go to the superusers: boss@example.com, second@example.com."
    assert expected in staff_client.get("/dashboard/").content.decode()
    assert staff_client.get("/dashboard/data.json").json()["alerts"] == {
        "text": f"JOBS_ALERT_RECIPIENTS is empty: {expected}",
        "nowhere": False,
    }
    assert check_alert_recipients(None) == []  # nothing ahead of every command's output
    messages = check_alert_routing(None)  # said by manage.py check --deploy
    assert [m.id for m in messages] == ["jobs.I005"] and expected in messages[0].msg


def test_it_e_mails_a_failing_jobs_alert_to_a_superuser_when_the_setting_is_empty(
    make_job, superuser, settings, django_capture_on_commit_callbacks
):
    settings.JOBS_ALERT_RECIPIENTS = []
    job = make_job("breaks", command="test_fail_job")
    with django_capture_on_commit_callbacks(execute=True):
        result = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False)
        run_execute(result.run.pk, dispatch_retry=False)
    notifications_process()
    assert [(message.to, message.subject) for message in mail.outbox] == [
        (["boss@example.com"], f"[Cronhouse] Job breaks failed (run #{result.run.pk})")
    ]
