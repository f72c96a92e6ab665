from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from . import sync  # noqa: F401  (connects the Job -> PeriodicTask signal handlers)
        from .redaction import register_secret_source
        from .run_actions import backfill_on_run_finished  # noqa: F401  (connects the receiver)
        from .webhook_execution import stored_header_values

        register_secret_source(stored_header_values, key="jobs.webhook_extra_headers")
