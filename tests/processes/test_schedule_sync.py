"""A job's schedule is its PeriodicTask's rows, and a running beat follows edits within seconds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.process_group import log_text, wait_for, wait_for_log

from .helpers import fresh

# --- plain database: the job's schedule is its PeriodicTask's rows ---------------------------


@pytest.mark.django_db
def test_it_rewrites_the_periodic_task_when_a_jobs_schedule_is_edited(make_job):
    from django_celery_beat.models import PeriodicTasks

    from jobs.scheduling.schedules import RUN_TASK

    job = make_job("nightly", cron_expression="0 3 * * *", timezone="Europe/London")
    task = job.periodic_task
    assert (task.task, task.enabled, task.interval) == (RUN_TASK, True, None)
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("0", "3", "Europe/London")
    before = PeriodicTasks.last_change()

    job.cron_expression = "15 4 * * 1-5"
    job.save()
    task = fresh(task)
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("15", "4", "1-5")
    assert PeriodicTasks.last_change() > before  # what a running beat watches

    job.cron_expression, job.interval_seconds = "", 30
    job.save()
    task = fresh(task)
    assert task.crontab is None and task.interval.every == 30 and task.interval.period == "seconds"

    job.enabled = False
    job.save()
    assert fresh(task).enabled is False
    assert fresh(job).periodic_task_id == task.pk  # updated in place, never recreated


@pytest.mark.django_db
def test_it_deletes_the_periodic_task_with_its_job(make_job):
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    job = make_job("short-lived")
    task_id = job.periodic_task_id
    before = PeriodicTasks.last_change()

    job.delete()

    assert not PeriodicTask.objects.filter(pk=task_id).exists()
    assert not PeriodicTask.objects.filter(name="cronhouse:short-lived").exists()
    assert PeriodicTasks.last_change() > before


# --- a running beat follows the Job rows ----------------------------------------------------


def _schedule_runs(job, after):
    from jobs.models import JobRun

    return list(
        JobRun.objects.filter(job=job, triggered_by=JobRun.Trigger.SCHEDULE, created_at__gt=after).order_by(
            "created_at"
        )
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.processes
def test_it_follows_a_job_edit_disable_and_delete_in_a_running_beat(processes, make_job, start_worker):
    from django_celery_beat.models import PeriodicTask

    from jobs.models import JobRun

    job = make_job("edited-live", interval_seconds=6)
    start_worker()
    beat = processes.beat("beat")
    wait_for_log(processes, "beat", "took the leader lease", timeout=30)
    started = timezone.now()
    wait_for(lambda: _schedule_runs(job, started), timeout=15, message="the first tick of the 6 s schedule")

    # Every 6 s -> every 2 s: within 10 s beat fires ticks 2 s apart (6 s apart before).
    edited = timezone.now()
    job.interval_seconds = 2
    job.save()

    def fires_two_seconds_apart():
        runs = _schedule_runs(job, edited)
        return any(b.created_at - a.created_at < timedelta(seconds=4) for a, b in zip(runs, runs[1:], strict=False))

    wait_for(fires_two_seconds_apart, timeout=10, message="ticks 2 s apart within 10 s of the edit")
    runs = _schedule_runs(job, edited)
    assert all(run.scheduled_for.timestamp() % 2 == 0 for run in runs)  # slots of the new interval
    assert {run.status for run in runs} <= {JobRun.Status.QUEUED, JobRun.Status.RUNNING, JobRun.Status.SUCCEEDED}

    # Disabled: a tick that raced the change is recorded as skipped; then the ticks stop.
    disabled = timezone.now()
    job.enabled = False
    job.save()
    quiet_from = disabled + timedelta(seconds=10)
    wait_for(lambda: timezone.now() > quiet_from + timedelta(seconds=4), timeout=20, interval=0.5)
    late = _schedule_runs(job, disabled)
    assert not [run for run in late if run.created_at > quiet_from], [(r.pk, r.created_at) for r in late]
    assert all(r.status == JobRun.Status.SKIPPED and r.skip_reason == "job is paused" for r in late), late

    # Deleted: its PeriodicTask goes with it; beat reloads its schedule and carries on.
    task_id = job.periodic_task_id
    reloads = log_text(processes, "beat").count("Schedule changed")
    job.delete()
    assert not PeriodicTask.objects.filter(pk=task_id).exists()
    wait_for(
        lambda: log_text(processes, "beat").count("Schedule changed") > reloads,
        timeout=10,
        message="beat to reload its schedule after the delete",
    )
    assert beat.poll() is None
    assert " ERROR " not in log_text(processes, "beat") and "Traceback" not in log_text(processes, "beat")
