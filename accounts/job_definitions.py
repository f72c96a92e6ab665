"""The accounts jobs and their default schedules (UTC), registered by `manage.py seed_jobs`.

A job with a ``gate`` is seeded only while that setting is truthy (see docs/accounts.md).
"""

from jobs.definitions import JobDefinition

JOB_DEFINITIONS = [
    JobDefinition(
        name="expire-subscriptions",
        command="expire_subscriptions",
        cron_expression="*/5 * * * *",
        description="Expire ended trials and paid periods; unpublish or republish catalogs by the plans held.",
        timeout_seconds=240,
        expected_duration_seconds=30,
    ),
    JobDefinition(
        name="trial-reminders",
        command="trial_reminders",
        cron_expression="0 9 * * *",
        description="7-day and 1-day trial-ending reminders, each once (unscheduled in the source system).",
        timeout_seconds=900,
        max_retries=1,
    ),
    JobDefinition(
        name="subscription-analytics",
        command="subscription_analytics",
        cron_expression="0 1 * * *",
        description="Daily MRR and subscription counts (active, trial, new, churned).",
        timeout_seconds=900,
        max_retries=2,
    ),
]
