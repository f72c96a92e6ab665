"""Jobs the project ships (their seeding is ``jobs.catalog.seeding``).

Each app lists its jobs in a ``job_definitions.py`` module (``JOB_DEFINITIONS``), so the
``jobs`` app discovers domain jobs without importing domain apps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.utils.module_loading import autodiscover_modules


@dataclass(frozen=True)
class JobDefinition:
    name: str
    command: str
    description: str
    cron_expression: str = ""
    interval_seconds: int | None = None
    timezone: str = "UTC"
    config: dict = field(default_factory=dict)
    enabled: bool = True
    timeout_seconds: int = 3600
    max_retries: int = 0
    retry_backoff_seconds: int = 60
    expected_duration_seconds: int | None = None
    # Platform upkeep (a queue drain, a clean-up): its runs stay out of run lists and totals
    # unless asked for (Job.housekeeping).
    housekeeping: bool = False
    # A job the tests run (test-job, test-fail-job): registered only by ``seed_jobs
    # --with-fixtures``, never by ``up`` on a fresh install, so nothing fails there on purpose.
    fixture: bool = False
    # A setting that must be truthy for seed_jobs to create the job (a feature switch), or "".
    gate: str = ""

    def defaults(self) -> dict:
        values = asdict(self)
        values.pop("name")
        values.pop("fixture")
        values.pop("gate")
        return values


def shipped_definitions(*, with_fixtures: bool = False) -> list[JobDefinition]:
    import importlib

    from django.apps import apps

    autodiscover_modules("job_definitions")
    found: list[JobDefinition] = []
    for config in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.job_definitions")
        except ModuleNotFoundError:
            continue
        found.extend(getattr(module, "JOB_DEFINITIONS", []))
    return [d for d in found if with_fixtures or not d.fixture]
