"""A job's schedule is its django-celery-beat rows: edited from the job form, django-celery-beat's
admin or a shell, it is checked by the one cron engine, allowed by the job's own rules, and moves
the job's next slot at once; a job leaves no beat row behind."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from jobs.models import AuditEntry, Job
from jobs.scheduling.cron import next_fire
from jobs.scheduling.schedules import job_schedule_set
from jobs.status.rows import job_rows
from tests.jobs.conftest import grant, job_form_data

pytestmark = pytest.mark.django_db

CRONTABS = "/admin/django_celery_beat/crontabschedule/"
TASKS = "/admin/django_celery_beat/periodictask/"


def crontab_data(row: CrontabSchedule, /, **changes) -> dict:
    data = {field: getattr(row, field) for field in ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")}
    data.update({"timezone": str(row.timezone), "periodictask_set-TOTAL_FORMS": 0, "periodictask_set-INITIAL_FORMS": 0})
    data.update(changes)
    return data


def task_data(task: PeriodicTask, /, **changes) -> dict:
    data = {"description": task.description, "crontab": task.crontab_id or "", "interval": task.interval_id or ""}
    data.update({"solar": "", "clocked": ""})
    if task.enabled:
        data["enabled"] = "on"
    data.update(changes)
    return data


def first_slot(cron: str, zone: str = "UTC", after: datetime | None = None) -> datetime:
    return next_fire(cron, None, zone, after or timezone.now()).at


def test_it_moves_next_fire_at_when_a_jobs_crontab_is_edited_in_beat_admin(staff_client, make_job):
    job = make_job("nightly", cron_expression="0 3 * * *", timezone="Europe/Paris")
    crontab = job.periodic_task.crontab

    response = staff_client.post(f"{CRONTABS}{crontab.pk}/change/", crontab_data(crontab, hour="5"))

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.cron_expression == "0 5 * * *" and job.timezone == "Europe/Paris"
    assert job.next_fire_at == first_slot("0 5 * * *", "Europe/Paris")
    assert job.schedule_changed_at is not None


def test_it_moves_next_fire_at_when_a_jobs_task_is_pointed_at_another_schedule_in_beat_admin(staff_client, make_job):
    job = make_job("nightly", cron_expression="0 3 * * *")
    every_ten_minutes = IntervalSchedule.objects.create(every=600, period=IntervalSchedule.SECONDS)

    data = task_data(job.periodic_task, crontab="", interval=every_ten_minutes.pk)
    assert staff_client.post(f"{TASKS}{job.periodic_task_id}/change/", data).status_code == 302

    job.refresh_from_db()
    assert job.interval_seconds == 600 and job.cron_expression == ""
    assert job.next_fire_at - timezone.now() <= timedelta(seconds=600)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"day_of_month": "31", "month_of_year": "2"}, "day_of_month", "February has at most 29 days"),
        ({"minute": "5/10"}, "minute", "not a valid cron expression"),
    ],
)
def test_it_refuses_an_invalid_or_never_firing_crontab_in_beat_admin_beside_its_field(
    staff_client, make_job, changes, field, words
):
    job = make_job("nightly", cron_expression="0 3 * * *")
    before = job.next_fire_at
    crontab = job.periodic_task.crontab

    response = staff_client.post(f"{CRONTABS}{crontab.pk}/change/", crontab_data(crontab, **changes))

    page = response.content.decode()
    assert response.status_code == 200 and words in page
    errors = response.context["adminform"].form.errors
    assert words in " ".join(errors[field])
    crontab.refresh_from_db()
    job.refresh_from_db()
    assert job.cron_expression == "0 3 * * *" and job.next_fire_at == before


def test_it_refuses_a_solar_schedule_on_a_jobs_task(staff_client, make_job):
    job = make_job("nightly", cron_expression="0 3 * * *")
    sunrise = SolarSchedule.objects.create(event="sunrise", latitude=48.85, longitude=2.35)

    data = task_data(job.periodic_task, crontab="", solar=sunrise.pk)
    response = staff_client.post(f"{TASKS}{job.periodic_task_id}/change/", data)

    assert response.status_code == 200 and "Debian cron has no sunrise" in response.content.decode()
    job.refresh_from_db()
    assert job.cron_expression == "0 3 * * *"


@pytest.mark.parametrize("who", ["no_change_rule", "other_group"])
def test_it_refuses_an_edit_in_beat_admin_to_who_may_not_change_the_job_and_audits_it(client, roles, who):
    user = roles["users"]["billing"]  # a Billing operator: sees and runs, member of Billing only
    grant(user, "django_celery_beat.view_crontabschedule", "django_celery_beat.change_crontabschedule")
    job = roles["payouts"]  # limited to Billing
    if who == "other_group":
        grant(user, "jobs.change_job")
        job = roles["notify"]  # limited to Notify
        job_schedule_set(job=job, cron_expression="0 4 * * *")  # a crontab of its own, so it is visible
        grant(user, "django_celery_beat.view_periodictask")
    else:
        job_schedule_set(job=job, cron_expression="0 4 * * *")
    client.force_login(user)
    crontab = Job.objects.get(pk=job.pk).periodic_task.crontab

    response = client.post(f"{CRONTABS}{crontab.pk}/change/", crontab_data(crontab, hour="6"), follow=True)

    assert "not changed: not allowed" in response.content.decode()
    crontab.refresh_from_db()
    assert crontab.hour == "4" and Job.objects.get(pk=job.pk).cron_expression == "0 4 * * *"
    entry = AuditEntry.objects.get(refused__startswith="crontab")
    assert (entry.object_repr, entry.actor, entry.action) == (job.name, user, "update")


def test_it_refuses_turning_a_jobs_task_off_in_beat_admin_without_the_jobs_toggle_rule(client, roles):
    user = grant(
        roles["users"]["billing"],
        "django_celery_beat.view_periodictask",
        "django_celery_beat.change_periodictask",
        "jobs.change_job",
    )
    client.force_login(user)
    job = roles["payouts"]
    data = task_data(job.periodic_task)
    data.pop("enabled")

    response = client.post(f"{TASKS}{job.periodic_task_id}/change/", data, follow=True)

    assert "missing permission jobs.toggle_job" in response.content.decode()
    job.refresh_from_db()
    assert job.enabled and job.periodic_task.enabled
    assert AuditEntry.objects.filter(refused__contains="jobs.toggle_job").count() == 1


def test_it_disables_the_job_when_its_task_is_turned_off_in_beat_admin(staff_client, make_job):
    job = make_job("nightly", cron_expression="0 3 * * *")
    data = task_data(job.periodic_task)
    data.pop("enabled")

    assert staff_client.post(f"{TASKS}{job.periodic_task_id}/change/", data).status_code == 302

    job.refresh_from_db()
    assert not job.enabled and job.next_fire_at is None and not job.periodic_task.enabled


def test_it_moves_every_job_using_a_shared_crontab_when_it_is_edited(staff_client, make_job):
    jobs = [make_job(f"hourly-{n}", cron_expression="0 * * * *", grace_seconds=60 * n) for n in (1, 2, 3)]
    alone = make_job("daily", cron_expression="0 3 * * *")
    crontab = jobs[0].periodic_task.crontab
    assert {job.periodic_task.crontab_id for job in jobs} == {crontab.pk}

    staff_client.post(f"{CRONTABS}{crontab.pk}/change/", crontab_data(crontab, minute="30"))

    slot = first_slot("30 * * * *")
    for n, job in enumerate(jobs, 1):
        job.refresh_from_db()
        assert (job.cron_expression, job.next_fire_at) == ("30 * * * *", slot)
        assert job.late_at == slot + timedelta(seconds=60 * n)
    before = alone.next_fire_at
    alone.refresh_from_db()
    assert alone.next_fire_at == before


def test_it_never_changes_a_crontab_other_jobs_share_when_one_job_is_rescheduled(make_job):
    first, second = make_job("first", cron_expression="0 * * * *"), make_job("second", cron_expression="0 * * * *")
    shared = first.periodic_task.crontab_id

    job_schedule_set(job=first, cron_expression="15 * * * *")

    second.refresh_from_db()
    first.refresh_from_db()
    assert second.cron_expression == "0 * * * *" and second.periodic_task.crontab_id == shared
    assert first.cron_expression == "15 * * * *" and first.periodic_task.crontab_id != shared
    assert first.next_fire_at == first_slot("15 * * * *")


@pytest.mark.parametrize("row", ["crontab", "interval", "task"])
def test_it_moves_next_fire_at_on_a_shell_save(make_job, row):
    job = (
        make_job("drain", cron_expression="0 3 * * *") if row != "interval" else make_job("drain", interval_seconds=60)
    )
    task = job.periodic_task
    if row == "crontab":
        task.crontab.hour = "4"
        task.crontab.save()
        expected = first_slot("0 4 * * *")
    elif row == "interval":
        task.interval.every = 86400
        task.interval.save()
        expected = next_fire("", 86400, "UTC", timezone.now()).at
    else:
        task.crontab = CrontabSchedule.objects.create(minute="0", hour="6")
        task.save()
        expected = first_slot("0 6 * * *")

    job.refresh_from_db()
    assert job.next_fire_at == expected


def test_it_refuses_a_never_firing_crontab_saved_from_a_shell(make_job):
    job = make_job("nightly", cron_expression="0 3 * * *")
    crontab = job.periodic_task.crontab
    crontab.day_of_month, crontab.month_of_year = "30", "2"

    with pytest.raises(ValidationError) as refused:
        crontab.save()

    assert "never fires" in refused.value.message_dict["day_of_month"][0]
    crontab.refresh_from_db()
    assert crontab.day_of_month == "*"


def test_it_stores_sunday_as_7_in_the_form_celery_reads(staff_client, make_job):
    job = make_job("weekend", cron_expression="0 9 * * *")

    response = staff_client.post(f"/admin/jobs/job/{job.pk}/change/", job_form_data(job, cron_expression="0 9 * * 5-7"))

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.cron_expression == "0 9 * * 0,5,6"
    assert job.periodic_task.crontab.day_of_week == "0,5,6"
    assert job.next_fire_at == first_slot("0 9 * * 5-7")


def test_it_leaves_no_beat_row_when_a_job_is_deleted(make_job, staff_client):
    one, other = make_job("one"), make_job("other", interval_seconds=30)
    tasks = [one.periodic_task_id, other.periodic_task_id]

    one.delete()
    staff_client.post("/admin/jobs/job/", {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"})

    assert not Job.objects.exists()
    assert not PeriodicTask.objects.filter(pk__in=tasks).exists()


def test_it_reads_the_schedules_of_a_page_of_jobs_in_a_fixed_number_of_queries(make_job, django_assert_max_num_queries):
    for n in range(30):
        make_job(f"job-{n:02d}", cron_expression=f"{n} * * * *")
    jobs = list(Job.objects.order_by("name"))

    with django_assert_max_num_queries(8):
        rows = job_rows(now=timezone.now(), jobs=jobs, recent_per_job=0, warnings=False)
        words = [row.job.schedule_description for row in rows]

    assert len(words) == 30 and "At 29 minutes past the hour" in words[-1]
