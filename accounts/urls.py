"""The embedded demo's stand-ins under /demo/ (accounts.demo_services): 404 outside the demo."""

from django.urls import path

from accounts import demo_services

app_name = "accounts"

urlpatterns = [
    path("providers/<str:name>/balance", demo_services.provider_balance, name="demo-provider-balance"),
    path("stripe/v1/subscriptions", demo_services.stripe_subscriptions, name="demo-stripe-subscriptions"),
    path("stripe/v1/subscriptions/<str:sub_id>", demo_services.stripe_subscription, name="demo-stripe-subscription"),
]
