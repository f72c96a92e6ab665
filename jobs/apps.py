from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from . import (
            deploy_checks,  # noqa: F401  (registers the static-files deployment check)
            sync,  # noqa: F401  (connects the Job -> PeriodicTask signal handlers)
        )
        from .logins import login_failed
        from .redaction import register_secret_source
        from .run_actions import backfill_on_run_finished  # noqa: F401  (connects the receiver)
        from .webhook_execution import stored_header_values

        register_secret_source(stored_header_values, key="jobs.webhook_extra_headers")
        # After axes' receiver (its app is listed first), which marks a lockout on the request.
        user_login_failed.connect(login_failed, dispatch_uid="jobs.logins.login_failed")
