from jobs.catalog.definitions import JobDefinition

JOB_DEFINITIONS = [
    JobDefinition(
        name="process-notifications",
        command="process_notifications",
        interval_seconds=30,
        description="Drain the e-mail queue: claim with SKIP LOCKED, send, back off 1m -> 3m -> 9m -> 15m.",
        # A run drains for NOTIFICATIONS_DRAIN_SECONDS (25 s) and then stops claiming.
        timeout_seconds=300,
        housekeeping=True,
    ),
    JobDefinition(
        name="retry-webhooks",
        command="retry_webhooks",
        cron_expression="30 9 * * *",
        description="Send webhook deliveries still due (failed attempts with retries left, lost messages).",
        timeout_seconds=1800,
        housekeeping=True,
    ),
]
