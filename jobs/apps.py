from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from . import sync  # noqa: F401  (connects the Job -> PeriodicTask signal handlers)
