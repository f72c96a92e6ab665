"""The accounts jobs and their default schedules (UTC), registered by `manage.py seed_jobs`.

A job with a ``gate`` is seeded only while that setting is truthy (see docs/accounts.md).
"""

from jobs.catalog.definitions import JobDefinition

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
    JobDefinition(
        name="cleanup-invitations",
        command="cleanup_invitations",
        cron_expression="0 3 * * *",
        description="Delete pending invitations past their expiry.",
        timeout_seconds=600,
    ),
    JobDefinition(
        name="cleanup-push-subscriptions",
        command="cleanup_push_subscriptions",
        cron_expression="0 3 * * 0",
        description="Remove Web Push subscriptions that expired or went unused past ACCOUNTS_PUSH_UNUSED_DAYS.",
        timeout_seconds=600,
    ),
    JobDefinition(
        name="purge-error-logs",
        command="purge_error_logs",
        cron_expression="0 3 * * *",
        description="Delete error-log rows past ACCOUNTS_ERROR_LOG_RETENTION_DAYS, in batches.",
        timeout_seconds=1800,
        gate="ACCOUNTS_ERROR_LOGGING_ENABLED",
    ),
    JobDefinition(
        name="check-license-expiration",
        command="check_license_expiration",
        cron_expression="0 8 * * *",
        description="Mark expired licenses; warning e-mails 7, 3 and 1 days before, each once.",
        timeout_seconds=900,
        max_retries=1,
        gate="ACCOUNTS_LICENSES_ENABLED",
    ),
    JobDefinition(
        name="check-low-credits-alerts",
        command="check_low_credits_alerts",
        cron_expression="0 */6 * * *",
        description="Notify each account that fell below its credit threshold, once per crossing.",
        timeout_seconds=600,
        max_retries=1,
    ),
    JobDefinition(
        name="approve-mature-affiliate-conversions",
        command="approve_mature_affiliate_conversions",
        cron_expression="0 4 * * *",
        description="Pending affiliate conversions older than the hold period become approved.",
        timeout_seconds=600,
        gate="ACCOUNTS_AFFILIATES_ENABLED",
    ),
    JobDefinition(
        name="sync-stripe",
        command="sync_stripe",
        cron_expression="0 */4 * * *",
        description="Reconcile local subscriptions with Stripe; create the ones whose webhook was missed.",
        timeout_seconds=1800,
        max_retries=2,
        retry_backoff_seconds=300,
        gate="ACCOUNTS_STRIPE_API_KEY",
    ),
    JobDefinition(
        name="process-account-deletions",
        command="process_account_deletions",
        cron_expression="*/30 * * * *",
        description="GDPR queue: delete organizations whose deletion request passed its grace period.",
        timeout_seconds=1500,
        max_retries=1,
        retry_backoff_seconds=300,
    ),
    JobDefinition(
        name="check-provider-credits",
        command="check_provider_credits",
        cron_expression="0 9 * * *",
        description="Check each external API provider key; e-mail the administrators when one is refused or low.",
        timeout_seconds=600,
    ),
]
