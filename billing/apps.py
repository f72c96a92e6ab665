from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from django.core import checks

        from billing.checks import billing_payout_provider_check

        checks.register(billing_payout_provider_check)
