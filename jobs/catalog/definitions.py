"""Jobs the project ships, and the idempotent seeding that registers them.

Each app lists its jobs in a ``job_definitions.py`` module (``JOB_DEFINITIONS``), so the
``jobs`` app discovers domain jobs without importing domain apps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.db import transaction
from django.utils.module_loading import autodiscover_modules

from jobs.models import Job

# Fields an admin may tune; seeding updates one only while it still holds the seeded value.
TUNABLE_FIELDS = (
    "description",
    "command",
    "cron_expression",
    "interval_seconds",
    "timezone",
    "config",
    "enabled",
    "timeout_seconds",
    "max_retries",
    "retry_backoff_seconds",
    "expected_duration_seconds",
    "housekeeping",
)


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


@transaction.atomic
def job_seed(*, definition: JobDefinition) -> str:
    """Create the job, or bring untouched fields up to date. Returns created/updated/unchanged."""
    defaults = definition.defaults()
    job = Job.objects.select_for_update().filter(name=definition.name).first()
    if job is None:
        job = Job(name=definition.name, seed_defaults=defaults, **defaults)
        job.full_clean()
        job.save()
        return "created"
    changed = []
    for name in TUNABLE_FIELDS:
        seeded = job.seed_defaults.get(name, getattr(job, name))
        if getattr(job, name) == seeded and seeded != defaults[name]:
            setattr(job, name, defaults[name])
            changed.append(name)
    if job.seed_defaults != defaults:
        job.seed_defaults = defaults
        job.save()
    return "updated" if changed else "unchanged"
