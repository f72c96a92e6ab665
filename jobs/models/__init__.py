from .jobs import DEFAULT_CATCH_UP_LIMIT, Job, JobRun, WebhookHandler
from .records import AuditEntry, ServiceHeartbeat, SystemLog

__all__ = ["DEFAULT_CATCH_UP_LIMIT", "AuditEntry", "Job", "JobRun", "ServiceHeartbeat", "SystemLog", "WebhookHandler"]
