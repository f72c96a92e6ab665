"""Accounts in the admin: an operations tool over the SaaS customers."""

from __future__ import annotations

from django.contrib import admin

from .models import Account, Catalog, Plan, Subscription, SubscriptionNotice, SubscriptionSnapshot


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by jobs: visible, filterable, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "monthly_price", "trial_days", "includes_catalog")


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "created_at")
    search_fields = ("name", "email")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("account", "plan", "status", "trial_ends_at", "current_period_end", "expired_at")
    list_filter = ("status", "plan")
    list_select_related = ("account", "plan")
    search_fields = ("account__name", "account__email")


@admin.register(Catalog)
class CatalogAdmin(admin.ModelAdmin):
    list_display = ("name", "account", "required_plan", "published", "unpublished_at", "unpublished_reason")
    list_filter = ("published",)
    list_select_related = ("account", "required_plan")


@admin.register(SubscriptionNotice)
class SubscriptionNoticeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "tier", "subscription", "dedupe_key", "sent_on")
    list_filter = ("kind", "tier")
    list_select_related = ("subscription__account", "subscription__plan")
    search_fields = ("dedupe_key",)


@admin.register(SubscriptionSnapshot)
class SubscriptionSnapshotAdmin(ReadOnlyAdmin):
    list_display = (
        "day",
        "mrr",
        "active_subscriptions",
        "trial_subscriptions",
        "new_subscriptions",
        "churned_subscriptions",
    )
