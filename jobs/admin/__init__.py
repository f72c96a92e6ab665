"""The admin as an operations tool. Django's admin autodiscovery imports this package; each module
registers its own models' pages."""

from jobs.admin import api_keys, jobs, periodic_tasks, system_log, windows  # noqa: F401
