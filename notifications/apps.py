from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from core.redaction import register_secret_source, stored_secrets_forget
        from jobs.operations.health import health_check_register
        from jobs.operations.logs import purge_logs_requested
        from jobs.signals import run_finished

        from . import checks  # noqa: F401  (registers the system checks)
        from .alerts import on_run_finished
        from .mail_health import mail_health, mail_health_text
        from .models import WebhookEndpoint
        from .retention import on_purge_logs_requested
        from .webhooks import endpoint_secrets

        run_finished.connect(on_run_finished, dispatch_uid="notifications.alerts")
        purge_logs_requested.connect(on_purge_logs_requested, dispatch_uid="notifications.retention")
        register_secret_source(endpoint_secrets, key="notifications.endpoints")
        # The redactor reads the endpoints' secrets once per process: a change makes it read again.
        for signal in (post_save, post_delete):
            signal.connect(stored_secrets_forget, sender=WebhookEndpoint, dispatch_uid="core.redaction.endpoints")
        health_check_register("mail", label="Mail", check=mail_health, describe=mail_health_text)
