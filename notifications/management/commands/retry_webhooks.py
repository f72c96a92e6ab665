from jobs.running.command import JobCommand
from notifications.webhooks import webhooks_retry_due


class Command(JobCommand):
    help = "Send webhook deliveries that are due: failed attempts with retries left, and lost messages."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--limit", type=int, default=500, help="Deliveries to attempt in this run.")

    def run_job(self, *, now, dry_run, limit=500, **options) -> dict:
        if dry_run:
            from notifications.models import WebhookDelivery
            from notifications.webhooks import _due

            return {"due": WebhookDelivery.objects.filter(_due(now)).count()}
        return webhooks_retry_due(now=now, limit=limit)
