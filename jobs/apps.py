"""The job platform's start-up wiring, all of it here: system checks, signal receivers and the
secret sources of the redactor. No module of the app registers anything when it is imported."""

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        self.checks_register()
        self.receivers_connect()
        from core.redaction import register_secret_source
        from jobs.running.webhooks import stored_handler_secrets, stored_header_values

        register_secret_source(stored_handler_secrets, key="jobs.webhook_secrets")
        register_secret_source(stored_header_values, key="jobs.webhook_extra_headers")

    @staticmethod
    def checks_register() -> None:
        from django.core import checks

        from jobs.operations import checks as platform
        from jobs.operations import deploy_checks

        security = checks.Tags.security
        checks.register(platform.check_api_key, security, deploy=True)
        checks.register(platform.check_bootstrap_api_key, security, deploy=True)
        checks.register(platform.check_secrets_encryption_key, security)
        checks.register(platform.check_client_address_setting, security)
        checks.register(platform.check_alert_recipients)
        checks.register(platform.check_alert_routing, deploy=True)
        checks.register(deploy_checks.check_static_files_collected, checks.Tags.staticfiles, deploy=True)
        checks.register(deploy_checks.check_https_behind_proxy, security, deploy=True)

    @staticmethod
    def receivers_connect() -> None:
        from celery.signals import celeryd_after_setup, task_failure, worker_process_init, worker_shutting_down
        from django.contrib.auth.signals import user_logged_in, user_login_failed
        from django.core.signals import setting_changed
        from django.db.models.signals import post_delete, post_save, pre_save
        from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

        from core.db_recovery import drop_broken_connections
        from core.redaction import setting_values_forget, stored_secrets_forget
        from jobs import tasks
        from jobs.models import Job, WebhookHandler
        from jobs.models.versions import job_version_saved
        from jobs.permissions.guards import password_login_remember
        from jobs.permissions.logins import login_failed
        from jobs.running.chains import chains_on_run_finished
        from jobs.running.execution import pool_process_mark
        from jobs.running.run_requests import backfill_on_run_finished
        from jobs.running.triage import failure_retried
        from jobs.scheduling import schedule_edits
        from jobs.signals import run_finished

        setting_changed.connect(setting_values_forget, dispatch_uid="core.redaction.setting_values_forget")
        # The redactor's stored secrets (the sources registered above read webhook handlers).
        for signal in (post_save, post_delete):
            signal.connect(stored_secrets_forget, sender=WebhookHandler, dispatch_uid="core.redaction.handler_secrets")
        # A worker whose database restarted drops its broken connections (core.db_recovery).
        task_failure.connect(drop_broken_connections, dispatch_uid="core.db_recovery.drop_broken_connections")
        celeryd_after_setup.connect(tasks.worker_remember, dispatch_uid="jobs.tasks.worker_remember")
        worker_shutting_down.connect(tasks.stop_grace_start, dispatch_uid="jobs.tasks.stop_grace")
        # A cancelled run past its grace in a pool process is ended by killing that process.
        worker_process_init.connect(pool_process_mark, dispatch_uid="jobs.running.execution.pool_process")
        user_logged_in.connect(password_login_remember, dispatch_uid="jobs.permissions.guards.password_login")
        # After axes' receiver (its app is listed first), which marks a lockout on the request.
        user_login_failed.connect(login_failed, dispatch_uid="jobs.permissions.logins.login_failed")
        post_save.connect(schedule_edits.job_saved, sender=Job, dispatch_uid="jobs.schedule_edits.job_saved")
        # After job_saved: the version reads the schedule it has just written.
        post_save.connect(job_version_saved, sender=Job, dispatch_uid="jobs.models.versions.job_version_saved")
        post_delete.connect(schedule_edits.job_deleted, sender=Job, dispatch_uid="jobs.schedule_edits.job_deleted")
        # A job's schedule edited on django-celery-beat's rows (its admin, a shell .save()): checked
        # by the engine before the write, every job using the row moved after it.
        for row in (PeriodicTask, CrontabSchedule, IntervalSchedule):
            uid = f"jobs.schedule_edits.{row.__name__}"
            pre_save.connect(schedule_edits.schedule_row_checking, sender=row, dispatch_uid=f"{uid}.checking")
            post_save.connect(schedule_edits.schedule_row_saved, sender=row, dispatch_uid=f"{uid}.saved")
        run_finished.connect(backfill_on_run_finished, dispatch_uid="jobs.running.run_requests.backfill")
        run_finished.connect(failure_retried, dispatch_uid="jobs.running.triage.failure_retried")
        # A run's end releases (or fails) the chained runs waiting on its job.
        run_finished.connect(chains_on_run_finished, dispatch_uid="jobs.running.chains.release")
