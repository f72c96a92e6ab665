from jobs.models.access import ApiKey, JobOperatorGroup
from jobs.models.backfills import Backfill
from jobs.models.jobs import DEFAULT_CATCH_UP_LIMIT, Job, JobRun, WebhookHandler
from jobs.models.records import AuditEntry, LeaderLease, ServiceHeartbeat, SystemLog
from jobs.models.versions import JobVersion
from jobs.models.windows import BlackoutWindow, JobDependency

__all__ = [
    "DEFAULT_CATCH_UP_LIMIT",
    "ApiKey",
    "AuditEntry",
    "Backfill",
    "BlackoutWindow",
    "Job",
    "JobDependency",
    "JobOperatorGroup",
    "JobRun",
    "JobVersion",
    "LeaderLease",
    "ServiceHeartbeat",
    "SystemLog",
    "WebhookHandler",
]
