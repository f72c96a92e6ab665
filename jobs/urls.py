"""Staff dashboard under /dashboard/ and the HTTP trigger API under /api/."""

from __future__ import annotations

from django.urls import path

from jobs.api import crud
from jobs.api import views as api
from jobs.dashboard import job_controls, run_actions, schedule, triage, versions
from jobs.dashboard import views as dashboard
from jobs.operations import health, metrics

app_name = "jobs"

urlpatterns = [
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("dashboard/data.json", dashboard.dashboard_data, name="dashboard-data"),
    path("dashboard/failures/", triage.failures, name="failures"),
    path("dashboard/failures/act", triage.failures_act, name="failures-act"),
    path("dashboard/jobs/<slug:name>/", dashboard.job_detail, name="job"),
    path("dashboard/jobs/<slug:name>/run", dashboard.job_run_now_view, name="job-run"),
    path("dashboard/jobs/<slug:name>/run-with-options", job_controls.job_run_with_options, name="job-run-options"),
    path("dashboard/jobs/<slug:name>/pause", job_controls.job_pause_view, name="job-pause"),
    path("dashboard/jobs/<slug:name>/resume", job_controls.job_resume_view, name="job-resume"),
    path(
        "dashboard/jobs/<slug:name>/versions/<int:number>/restore",
        versions.job_version_restore_view,
        name="job-version-restore",
    ),
    path("dashboard/runs/<int:run_id>/", dashboard.run_detail, name="run"),
    path("dashboard/runs/<int:run_id>/retry", run_actions.run_retry_view, name="run-retry"),
    path("dashboard/runs/<int:run_id>/cancel", run_actions.run_cancel_view, name="run-cancel"),
    path("dashboard/runs/<int:run_id>/acknowledge", triage.run_acknowledge_view, name="run-acknowledge"),
    path("dashboard/runs/<int:run_id>/run-slot-again", run_actions.run_slot_again_view, name="run-slot-again"),
    path("dashboard/jobs/<slug:name>/backfill", run_actions.backfill_new, name="backfill-new"),
    path("dashboard/backfills/<int:backfill_id>/", run_actions.backfill_detail, name="backfill"),
    path("dashboard/backfills/<int:backfill_id>/stop", run_actions.backfill_stop_view, name="backfill-stop"),
    path("dashboard/schedule/", schedule.schedule, name="schedule"),
    path("dashboard/schedule/<int:pk>/pause", schedule.schedule_set_enabled, {"enabled": False}, name="task-pause"),
    path("dashboard/schedule/<int:pk>/resume", schedule.schedule_set_enabled, {"enabled": True}, name="task-resume"),
    path("dashboard/schedule/<int:pk>/unschedule", schedule.schedule_unschedule, name="task-unschedule"),
    path("dashboard/reauthenticate/", schedule.reauthenticate, name="reauthenticate"),
    path("api/jobs/run", api.jobs_run, name="api-run-job"),
    path("api/jobs/status", api.jobs_status, name="api-status"),
    path("api/runs/<int:run_id>", api.run_detail, name="api-run"),
    path("api/jobs", crud.jobs_collection, name="api-jobs"),
    path("api/jobs/<int:job_id>", crud.job_item, name="api-job"),
    path("api/webhook-handlers", crud.handlers_collection, name="api-handlers"),
    path("api/webhook-handlers/<int:handler_id>", crud.handler_item, name="api-handler"),
    path("api/runs/<int:run_id>/cancel", api.run_cancel, name="api-run-cancel"),
    path("health/", health.health, name="health"),
    path("metrics", metrics.metrics, name="metrics"),
]
