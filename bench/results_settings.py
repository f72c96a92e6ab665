"""Settings of the Celery + django-celery-results baseline's worker in bench/runner_overhead.py:
the shipped settings plus what a Django user adds to keep a row per task (``django-db``,
extended: the task's name, arguments and worker are stored with its result).

django-celery-results is a benchmark-only dependency (bench/README.md), not in requirements.txt.
"""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_results"]
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
