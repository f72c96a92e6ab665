from jobs.models.access import ApiKey, JobOperatorGroup
from jobs.models.backfills import Backfill
from jobs.models.jobs import DEFAULT_CATCH_UP_LIMIT, Job, JobRun, WebhookHandler
from jobs.models.records import AuditEntry, LeaderLease, ServiceHeartbeat, SystemLog
from jobs.models.versions import JobVersion

__all__ = [
    "DEFAULT_CATCH_UP_LIMIT",
    "ApiKey",
    "AuditEntry",
    "Backfill",
    "Job",
    "JobOperatorGroup",
    "JobRun",
    "JobVersion",
    "LeaderLease",
    "ServiceHeartbeat",
    "SystemLog",
    "WebhookHandler",
]
