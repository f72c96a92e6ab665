from .access import ApiKey, JobOperatorGroup
from .backfills import Backfill
from .jobs import DEFAULT_CATCH_UP_LIMIT, Job, JobRun, WebhookHandler
from .records import AuditEntry, LeaderLease, ServiceHeartbeat, SystemLog

__all__ = [
    "DEFAULT_CATCH_UP_LIMIT",
    "ApiKey",
    "AuditEntry",
    "Backfill",
    "Job",
    "JobOperatorGroup",
    "JobRun",
    "LeaderLease",
    "ServiceHeartbeat",
    "SystemLog",
    "WebhookHandler",
]
