"""Helpers shared by the real-process integration tests."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.processes import wait_for_log


@pytest.fixture
def seeded_fixtures(transactional_db):
    """``manage.py seed_jobs --with-fixtures``: test-job, test-fail-job, test-sleep-job (and the shipped jobs).

    Returns a function that applies field changes to one of them through the ORM (as an admin would).
    """
    from jobs.models import Job

    call_command("seed_jobs", with_fixtures=True, verbosity=0)

    def tune(name: str, **changes) -> Job:
        job = Job.objects.get(name=name)
        for field, value in changes.items():
            setattr(job, field, value)
        job.full_clean()
        job.save()
        return job

    return tune


@pytest.fixture
def start_worker(processes, redis_broker):
    """Start a Celery worker and wait until it consumes from the broker."""

    def start(name: str = "worker", *, timeout: float = 60, **env):
        proc = processes.worker(name, **env)
        wait_for_log(processes, name, " ready.", timeout=timeout)
        return proc

    return start
