"""django-celery-beat's admin pages follow jobs.permissions.access: a job's beat task (and the schedule row it
uses) holds the job's schedule, is edited there under the job's rules and points to the job; what the
task runs and deleting it stay the job's; tasks no job owns stay editable by
who holds the permission, but never name the job engine's tasks; a job's task is listed only to
who may see the job."""

from __future__ import annotations

import json

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from jobs.models import AuditEntry
from jobs.scheduling.schedules import RUN_TASK
from tests.jobs.conftest import PASSWORD, grant

pytestmark = pytest.mark.django_db

TASKS = "/admin/django_celery_beat/periodictask/"
CRONTABS = "/admin/django_celery_beat/crontabschedule/"
GONE = "doesn’t exist"


def task_data(row: PeriodicTask, /, **changes) -> dict:
    """What django-celery-beat's change form posts for ``row``, with ``changes`` applied."""
    data = {
        "name": row.name,
        "regtask": "",
        "task": row.task,
        "description": row.description,
        "crontab": row.crontab_id or "",
        "interval": row.interval_id or "",
        "args": row.args,
        "kwargs": row.kwargs,
        "headers": row.headers,
        "priority": "",
        "expire_seconds": "",
        "queue": "",
        "exchange": "",
        "routing_key": "",
    }
    if row.enabled:
        data["enabled"] = "on"
    data.update(changes)
    return data


def beat_user(django_user_model, name: str, *codenames: str):
    user = django_user_model.objects.create_user(name, password=PASSWORD, is_staff=True)
    return grant(user, *codenames)


def unchanged(job, task: PeriodicTask) -> bool:
    before = (task.task, task.args, task.kwargs, task.enabled, task.crontab_id)
    job.refresh_from_db()
    task.refresh_from_db()
    return job.enabled and (task.task, task.args, task.kwargs, task.enabled, task.crontab_id) == before


@pytest.fixture
def cleanup_task(db):
    """A beat task no job owns: Celery's own results clean-up."""
    crontab = CrontabSchedule.objects.create(minute="0", hour="4")
    return PeriodicTask.objects.create(name="celery.backend_cleanup", task="celery.backend_cleanup", crontab=crontab)


@pytest.fixture
def beat_editor(django_user_model):
    """The finding's user: staff with django-celery-beat's change permission and nothing of jobs."""
    return beat_user(django_user_model, "beat-editor", "django_celery_beat.change_periodictask")


def test_it_refuses_the_disable_action_on_a_jobs_task_to_who_has_only_the_beat_permission(client, roles, beat_editor):
    payouts = roles["payouts"]
    task = payouts.periodic_task
    client.force_login(beat_editor)

    page = client.post(TASKS, {"action": "disable_tasks", "_selected_action": [task.pk]}, follow=True)

    assert "1 of the selected periodic tasks not found" in page.content.decode()
    assert unchanged(payouts, task)
    assert not AuditEntry.objects.exists()


def test_it_refuses_to_repoint_or_delete_a_jobs_task_for_who_has_only_the_beat_permission(client, roles, beat_editor):
    payouts = roles["payouts"]
    task = payouts.periodic_task
    client.force_login(beat_editor)

    attack = task_data(task, task="jobs.tasks.execute_run", args="[999]", kwargs="{}")
    changed = client.post(f"{TASKS}{task.pk}/change/", attack, follow=True)
    deleted = client.post(f"{TASKS}{task.pk}/delete/", {"post": "yes"})

    # To who may not see the job its task does not exist; deleting also needs jobs.manage_schedule.
    assert GONE in changed.content.decode() and deleted.status_code == 403
    assert unchanged(payouts, task)
    assert not AuditEntry.objects.exists()


def test_it_hides_a_group_limited_jobs_task_from_who_may_not_see_the_job(client, roles, cleanup_task):
    billing = grant(
        roles["users"]["billing"], "django_celery_beat.view_periodictask", "django_celery_beat.view_crontabschedule"
    )
    client.force_login(billing)
    notify = roles["notify"]

    listing = client.get(TASKS).content.decode()
    # Both jobs run every minute: they share one crontab row.
    schedule = client.get(f"{CRONTABS}{notify.periodic_task.crontab_id}/change/")
    page = client.get(f"{TASKS}{notify.periodic_task_id}/change/", follow=True).content.decode()

    assert "cronhouse:generate-payouts" in listing and "celery.backend_cleanup" in listing
    assert "cronhouse:process-notifications" not in listing
    assert schedule.status_code == 200
    assert "cronhouse:generate-payouts" in schedule.content.decode()
    assert "process-notifications" not in schedule.content.decode()
    assert "generate-payouts</a> and 1 other job(s)" in schedule.content.decode()
    assert GONE in page and "process-notifications" not in page


@pytest.mark.parametrize("who", ["boss", "operator"])
def test_it_shows_a_jobs_task_as_the_jobs_schedule_with_a_link_to_the_job(client, roles, who, django_user_model):
    if who == "operator":
        user = grant(
            roles["users"]["billing"],
            "django_celery_beat.view_periodictask",
            "django_celery_beat.change_periodictask",
            "jobs.change_job",
            "jobs.toggle_job",
        )
    else:
        user = roles["users"]["boss"]
    client.force_login(user)
    payouts = roles["payouts"]

    page = client.get(f"{TASKS}{payouts.periodic_task_id}/change/")
    text = page.content.decode()

    assert page.status_code == 200
    assert "holds the schedule of job" in text
    assert f'<a href="/admin/jobs/job/{payouts.pk}/change/">generate-payouts</a>' in text
    assert 'name="crontab"' in text and 'name="args"' not in text and 'name="task"' not in text


def test_it_refuses_a_superuser_editing_a_jobs_task_and_points_to_the_job(client, roles):
    client.force_login(roles["users"]["boss"])
    payouts = roles["payouts"]
    task = payouts.periodic_task
    link = f'<a href="/admin/jobs/job/{payouts.pk}/change/">generate-payouts</a>'

    attack = task_data(task, task="jobs.tasks.execute_run", args="[999]", kwargs="{}")
    changed = client.post(f"{TASKS}{task.pk}/change/", attack, follow=True)
    deleted = client.post(f"{TASKS}{task.pk}/delete/", {"post": "yes"}, follow=True)

    for response in (changed, deleted):
        assert response.redirect_chain[-1][0] == f"{TASKS}{task.pk}/change/"
        assert link in response.content.decode()
    assert unchanged(payouts, task)


@pytest.mark.parametrize("action", ["disable_tasks", "toggle_tasks", "run_tasks", "delete_selected"])
def test_it_leaves_a_jobs_task_out_of_every_bulk_action_and_says_where_to_edit_it(client, roles, action):
    client.force_login(roles["users"]["boss"])
    payouts = roles["payouts"]
    task = payouts.periodic_task

    data = {"action": action, "_selected_action": [task.pk], "post": "yes"}
    page = client.post(TASKS, data, follow=True).content.decode()

    assert "1 of the selected periodic tasks belong to jobs and were left unchanged" in page
    assert f'<a href="/admin/jobs/job/{payouts.pk}/change/">generate-payouts</a>' in page
    assert unchanged(payouts, task)


def test_it_refuses_to_delete_the_crontab_a_jobs_task_uses(client, roles):
    client.force_login(roles["users"]["boss"])
    payouts = roles["payouts"]
    crontab = payouts.periodic_task.crontab
    data = {"minute": "7", "hour": "*", "day_of_month": "*", "month_of_year": "*", "day_of_week": "*"}
    data.update({"timezone": "UTC", "periodictask_set-TOTAL_FORMS": 0, "periodictask_set-INITIAL_FORMS": 0})

    changed = client.post(f"{CRONTABS}{crontab.pk}/change/", data, follow=True).content.decode()
    deleted = client.post(f"{CRONTABS}{crontab.pk}/delete/", {"post": "yes"}, follow=True).content.decode()
    bulk = client.post(
        CRONTABS, {"action": "delete_selected", "_selected_action": [crontab.pk], "post": "yes"}, follow=True
    ).content.decode()

    assert "changed successfully" in changed and "is deleted with its job" in deleted
    assert "belong to jobs and were left unchanged" in bulk
    crontab.refresh_from_db()  # edited (the jobs' rules allow it), not deleted
    assert crontab.minute == "7" and PeriodicTask.objects.filter(pk=payouts.periodic_task_id).exists()


def test_it_edits_the_interval_a_jobs_task_uses(client, make_job, superuser):
    client.force_login(superuser)
    job = make_job("drain", interval_seconds=30)
    interval = job.periodic_task.interval
    data = {"every": 5, "period": "seconds", "periodictask_set-TOTAL_FORMS": 0, "periodictask_set-INITIAL_FORMS": 0}

    page = client.get(f"/admin/django_celery_beat/intervalschedule/{interval.pk}/change/").content.decode()
    client.post(f"/admin/django_celery_beat/intervalschedule/{interval.pk}/change/", data)

    assert "holds the schedule of job" in page and 'name="every"' in page
    interval.refresh_from_db()
    assert interval.every == 5


def test_it_lets_who_has_the_permission_edit_a_task_no_job_owns(client, cleanup_task, django_user_model):
    client.force_login(beat_user(django_user_model, "beat-editor", "django_celery_beat.change_periodictask"))

    response = client.post(f"{TASKS}{cleanup_task.pk}/change/", task_data(cleanup_task, description="nightly"))
    disabled = client.post(TASKS, {"action": "disable_tasks", "_selected_action": [cleanup_task.pk]}, follow=True)

    assert response.status_code == 302
    assert "1 task(s) disabled." in disabled.content.decode()
    cleanup_task.refresh_from_db()
    assert cleanup_task.description == "nightly" and not cleanup_task.enabled


@pytest.mark.parametrize(
    "fields",
    [
        {"task": RUN_TASK, "kwargs": json.dumps({"job_id": 1})},
        {"task": "jobs.tasks.execute_run", "args": "[999]"},
        {"regtask": "jobs.tasks.execute_run", "args": "[999]"},
        {"task": "celery.map", "args": json.dumps([{"task": "jobs.tasks.execute_run", "args": [999]}, [[1]]])},
        {"task": "os.system", "args": json.dumps(["touch /tmp/x"])},
    ],
)
def test_it_refuses_to_point_a_task_no_job_owns_at_anything_but_a_schedulable_task(
    client, cleanup_task, beat_editor, fields
):
    grant(beat_editor, "django_celery_beat.add_periodictask")
    client.force_login(beat_editor)

    changed = client.post(f"{TASKS}{cleanup_task.pk}/change/", task_data(cleanup_task, **fields))
    added = client.post(f"{TASKS}add/", task_data(cleanup_task, name="new-task", **fields))

    for response in (changed, added):
        assert response.status_code == 200 and "errornote" in response.content.decode()
    cleanup_task.refresh_from_db()
    assert cleanup_task.task == "celery.backend_cleanup" and cleanup_task.args == "[]"
    assert list(PeriodicTask.objects.values_list("name", flat=True)) == ["celery.backend_cleanup"]


def test_it_offers_only_schedulable_tasks_to_choose_from(admin_client, settings):
    page = admin_client.get(f"{TASKS}add/").content.decode()
    assert '<option value="celery.backend_cleanup">' in page
    assert "notifications.tasks.webhook_deliver" not in page
    assert "jobs.tasks.execute_run" not in page and "celery.map" not in page

    settings.JOBS_BEAT_EXTRA_TASKS = ["notifications.tasks.webhook_deliver", "jobs.tasks.execute_run"]
    page = admin_client.get(f"{TASKS}add/").content.decode()
    assert '<option value="notifications.tasks.webhook_deliver">' in page
    assert "jobs.tasks.execute_run" not in page


def test_it_keeps_names_of_jobs_tasks_for_jobs(admin_client, make_job):
    data = {"name": "cronhouse:future-job", "task": "celery.backend_cleanup", "args": "[]", "kwargs": "{}"}
    data.update({"crontab": CrontabSchedule.objects.create(minute="1").pk, "headers": "{}", "enabled": "on"})
    page = admin_client.post(f"{TASKS}add/", data).content.decode()
    assert "kept for the jobs" in page and not PeriodicTask.objects.exists()


def test_it_refuses_pausing_a_jobs_task_on_the_schedule_page_outside_the_jobs_groups(client, roles):
    billing = grant(
        roles["users"]["billing"], "jobs.manage_schedule", "jobs.toggle_job", "django_celery_beat.view_periodictask"
    )
    client.force_login(billing)
    payouts, notify = roles["payouts"], roles["notify"]

    refused = client.post(f"/dashboard/schedule/{notify.periodic_task_id}/pause", follow=True).content.decode()
    client.post(f"/dashboard/schedule/{payouts.periodic_task_id}/pause")

    assert "belongs to job process-notifications: not allowed (job limited to other operator groups)" in refused
    payouts.refresh_from_db(), notify.refresh_from_db()
    assert notify.enabled and notify.periodic_task.enabled
    assert not payouts.enabled and not payouts.periodic_task.enabled
    entry = AuditEntry.objects.get(refused__gt="")
    assert (entry.action, entry.object_repr) == ("disable", "process-notifications")


# The scheduler closes the connection it finds (django-celery-beat's own start-up).
@pytest.mark.django_db(transaction=True)
def test_it_never_sends_a_jobs_beat_row_changed_behind_the_jobs_back(make_job, cleanup_task):
    from celery import current_app

    from jobs.scheduling.beat import LeaderDatabaseScheduler

    job = make_job("nightly")
    PeriodicTask.objects.filter(pk=job.periodic_task_id).update(task="jobs.tasks.execute_run", args="[999]")

    schedule = LeaderDatabaseScheduler(app=current_app).schedule

    assert "celery.backend_cleanup" in schedule and "cronhouse:nightly" not in schedule
