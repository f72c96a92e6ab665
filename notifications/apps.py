from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.core.checks import register as check_register

        from core.redaction import register_secret_source
        from jobs.operations.health import health_check_register
        from jobs.operations.logs import purge_logs_requested
        from jobs.signals import run_finished

        from . import checks  # noqa: F401  (registers the system checks)
        from .alerts import on_run_finished
        from .channel_sending import alert_channel_secrets
        from .mail_health import mail_health, mail_health_text
        from .retention import on_purge_logs_requested
        from .routing import check_alert_destinations
        from .webhooks import endpoint_secrets

        run_finished.connect(on_run_finished, dispatch_uid="notifications.alerts")
        purge_logs_requested.connect(on_purge_logs_requested, dispatch_uid="notifications.retention")
        register_secret_source(endpoint_secrets, key="notifications.endpoints")
        register_secret_source(alert_channel_secrets, key="notifications.alert_channels")
        check_register(check_alert_destinations)
        health_check_register("mail", label="Mail", check=mail_health, describe=mail_health_text)
