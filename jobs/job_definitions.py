from jobs.catalog.definitions import JobDefinition

JOB_DEFINITIONS = [
    JobDefinition(
        name="process-jobs",
        command="process_jobs",
        cron_expression="* * * * *",
        description="Dispatch queued runs whose message was lost (broker down); abandon runs whose worker died.",
        timeout_seconds=300,
        housekeeping=True,
    ),
    JobDefinition(
        name="cleanup-sessions",
        command="clearsessions",
        cron_expression="0 2 * * *",
        description="Django's own clearsessions as a job: on the allow-list through this definition.",
        timeout_seconds=600,
        housekeeping=True,
    ),
    JobDefinition(
        name="test-job",
        command="test_job",
        cron_expression="*/15 * * * *",
        description="Development fixture: succeeds.",
        fixture=True,
        timeout_seconds=60,
    ),
    JobDefinition(
        name="test-fail-job",
        command="test_fail_job",
        cron_expression="0 * * * *",
        description="Development fixture: fails.",
        fixture=True,
        timeout_seconds=60,
    ),
    JobDefinition(
        name="test-sleep-job",
        command="test_sleep_job",
        cron_expression="30 * * * *",
        description="Development fixture: sleeps config.seconds (default 5).",
        fixture=True,
        config={"seconds": 5},
        timeout_seconds=120,
    ),
]

JOB_DEFINITIONS += [
    JobDefinition(
        name="audit-log-cleanup",
        command="audit_log_cleanup",
        cron_expression="0 3 * * *",
        description="Delete audit entries and system log rows older than 90 days (JOBS_AUDIT_RETENTION_DAYS), "
        "in batches.",
        timeout_seconds=1800,
        housekeeping=True,
    ),
    JobDefinition(
        name="purge-logs",
        command="purge_logs",
        cron_expression="0 4 * * *",
        description="Delete job runs older than 90 days (keeping each job's newest), and sent/dead "
        "notifications and webhook deliveries older than 90 days.",
        timeout_seconds=1800,
        housekeeping=True,
    ),
]
