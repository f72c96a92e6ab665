"""The generate-charges job and the billing data builder, for job-platform tests that run it."""

from __future__ import annotations

from jobs.models import Job
from tests.billing.conftest import build  # noqa: F401  (re-exported fixture: billing data builder)


def charges_job_create() -> Job:
    job = Job(name="generate-charges", command="generate_charges", cron_expression="0 6 1 * *")
    job.full_clean()
    job.save()
    return job
