"""A pytest plugin for bin/test's workers (``-p tests.worker_env``): a worker started with
CRONHOUSE_TEST_REDIS_DB (execnet's ``env:`` spec, which cannot carry a URL: it splits on "//")
uses that Redis db number for its broker and cache. It runs when pytest loads it, before
pytest-django makes Django read its settings."""

from __future__ import annotations

import os

db = os.environ.get("CRONHOUSE_TEST_REDIS_DB")
broker = os.environ.get("CELERY_BROKER_URL", "")
if db and broker.startswith("redis://"):
    os.environ["CELERY_BROKER_URL"] = f"{broker.rsplit('/', 1)[0]}/{int(db)}"
