from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.core.checks import register as check_register
        from django.db.models.signals import post_delete, post_save

        from core.redaction import register_secret_source, stored_secrets_forget
        from jobs.models.versions import job_version_part_register
        from jobs.operations.health import alert_routing_register, health_check_register
        from jobs.operations.logs import purge_logs_requested
        from jobs.operations.metrics import register_collector
        from jobs.signals import lateness_changed, run_finished, run_slow
        from notifications.alerts.jobs import on_run_finished
        from notifications.alerts.late_summary import on_lateness_changed
        from notifications.alerts.operations import on_run_slow
        from notifications.channels.routing import (
            check_alert_destinations,
            job_channel_names,
            job_channels_restore,
            on_job_route_changed,
            unrouted_alerting_jobs,
        )
        from notifications.channels.sending import alert_channel_secrets
        from notifications.checks import notifications_settings_check
        from notifications.email.health import mail_health, mail_health_text
        from notifications.metrics import NotificationQueueCollector
        from notifications.models import AlertChannel, AlertRoute, WebhookEndpoint
        from notifications.retention import on_purge_logs_requested
        from notifications.webhooks import endpoint_secrets

        run_finished.connect(on_run_finished, dispatch_uid="notifications.alerts.jobs")
        lateness_changed.connect(on_lateness_changed, dispatch_uid="notifications.alerts.late_summary")
        run_slow.connect(on_run_slow, dispatch_uid="notifications.alerts.operations.slow")
        purge_logs_requested.connect(on_purge_logs_requested, dispatch_uid="notifications.retention")
        register_secret_source(endpoint_secrets, key="notifications.endpoints")
        register_secret_source(alert_channel_secrets, key="notifications.alert_channels")
        # The redactor reads stored secrets once per process: a change here makes it read again.
        for model in (WebhookEndpoint, AlertChannel):
            for signal in (post_save, post_delete):
                signal.connect(stored_secrets_forget, sender=model, dispatch_uid=f"core.redaction.{model.__name__}")
        check_register(notifications_settings_check)
        check_register(check_alert_destinations)
        alert_routing_register(unrouted_jobs=unrouted_alerting_jobs)  # the dashboard's banner
        # A job's own alert channels are part of its versions, restored with them.
        job_version_part_register(
            "alert_channels", read=job_channel_names, restore=job_channels_restore, label="alert channels"
        )
        for signal in (post_save, post_delete):
            signal.connect(on_job_route_changed, sender=AlertRoute, dispatch_uid="notifications.routing.versions")
        register_collector(NotificationQueueCollector(), key="notifications")
        health_check_register("mail", label="Mail", check=mail_health, describe=mail_health_text)
