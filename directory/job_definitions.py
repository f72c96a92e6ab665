"""The directory's jobs and their default schedules (UTC), registered by `manage.py seed_jobs`.

``expected_duration_seconds`` is each job's duration target: a run that takes longer is flagged slow.
"""

from jobs.catalog.definitions import JobDefinition

JOB_DEFINITIONS = [
    JobDefinition(
        name="facilities-regions-sync",
        command="facilities_regions_sync",
        cron_expression="0 7 * * 1",
        description="Facilities and regions from the legacy source database (full sync; gone ones marked inactive).",
        timeout_seconds=600,
        max_retries=2,
        retry_backoff_seconds=300,
        expected_duration_seconds=60,
    ),
    JobDefinition(
        name="members-sync",
        command="members_sync",
        cron_expression="15 7 * * *",
        description="Member records from the legacy source: upsert changed ones, weekly full sync marks missing "
        "members inactive.",
        timeout_seconds=1200,
        max_retries=2,
        retry_backoff_seconds=300,
        expected_duration_seconds=120,
    ),
    JobDefinition(
        name="positions-sync",
        command="positions_sync",
        cron_expression="45 7 * * *",
        description="Members' position assignments from the legacy source database.",
        timeout_seconds=900,
        max_retries=2,
        retry_backoff_seconds=300,
        expected_duration_seconds=90,
    ),
    JobDefinition(
        name="intercom-sync",
        command="intercom_sync",
        cron_expression="0 8 * * *",
        description="Active and Retired members pushed to Intercom as contacts (changed ones only).",
        timeout_seconds=3600,
        max_retries=1,
        retry_backoff_seconds=900,
        expected_duration_seconds=600,
    ),
]
