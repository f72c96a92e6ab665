"""Accounts in the admin: an operations tool over the SaaS customers."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone

from core.admin_columns import OneFormatAdmin, OneFormatTabularInline, ReadOnlyAdmin

from .models import (
    Account,
    Affiliate,
    AffiliateConversion,
    Catalog,
    CreditBalance,
    DeletionRequest,
    ErrorLog,
    Invitation,
    License,
    LicenseWarning,
    Membership,
    Plan,
    PushSubscription,
    Subscription,
    SubscriptionNotice,
    SubscriptionSnapshot,
)
from .services.deletions import deletion_requests_cancel


@admin.register(Plan)
class PlanAdmin(OneFormatAdmin):
    list_display = ("name", "code", "monthly_price", "trial_days", "includes_catalog")


class MembershipInline(OneFormatTabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Account)
class AccountAdmin(OneFormatAdmin):
    list_display = ("name", "email", "language", "created_at")
    search_fields = ("name", "email")
    inlines = [MembershipInline]


@admin.register(Subscription)
class SubscriptionAdmin(OneFormatAdmin):
    list_display = ("account", "plan", "status", "trial_ends_at", "current_period_end", "expired_at")
    list_filter = ("status", "plan")
    list_select_related = ("account", "plan")
    search_fields = ("account__name", "account__email")


@admin.register(Catalog)
class CatalogAdmin(OneFormatAdmin):
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


@admin.register(Membership)
class MembershipAdmin(OneFormatAdmin):
    list_display = ("account", "user", "role", "language", "joined_at")
    list_filter = ("role",)
    list_select_related = ("account", "user")
    search_fields = ("account__name", "user__username", "user__email")
    autocomplete_fields = ("account", "user")


@admin.register(Invitation)
class InvitationAdmin(OneFormatAdmin):
    list_display = ("email", "account", "role", "status", "created_at", "expires_at")
    list_filter = ("status", "role")
    list_select_related = ("account",)
    search_fields = ("email", "account__name")
    # The token hash identifies the invitation; nobody types or reads it.
    exclude = ("token_hash",)


@admin.register(PushSubscription)
class PushSubscriptionAdmin(OneFormatAdmin):
    list_display = ("account", "user", "short_endpoint", "created_at", "last_used_at", "expires_at")
    list_select_related = ("account", "user")
    search_fields = ("account__name", "endpoint")

    @admin.display(description="Endpoint")
    def short_endpoint(self, obj: PushSubscription) -> str:
        return str(obj)


class LicenseWarningInline(OneFormatTabularInline):
    model = LicenseWarning
    extra = 0
    readonly_fields = ("tier", "dedupe_key", "sent_at")
    can_delete = False


@admin.register(License)
class LicenseAdmin(OneFormatAdmin):
    list_display = ("__str__", "account", "status", "expires_at", "expired_at")
    list_filter = ("status",)
    list_select_related = ("account",)
    search_fields = ("account__name", "key")
    inlines = [LicenseWarningInline]


@admin.register(CreditBalance)
class CreditBalanceAdmin(OneFormatAdmin):
    list_display = ("account", "balance", "threshold", "below_threshold", "below_since", "updated_at")
    list_filter = ("below_threshold",)
    list_select_related = ("account",)
    search_fields = ("account__name",)


@admin.register(Affiliate)
class AffiliateAdmin(OneFormatAdmin):
    list_display = ("name", "email", "code", "created_at")
    search_fields = ("name", "email", "code")


@admin.register(AffiliateConversion)
class AffiliateConversionAdmin(OneFormatAdmin):
    list_display = ("affiliate", "account", "commission", "status", "created_at", "approved_at")
    list_filter = ("status",)
    list_select_related = ("affiliate", "account")
    search_fields = ("affiliate__name", "affiliate__code", "account__name")


@admin.register(DeletionRequest)
class DeletionRequestAdmin(OneFormatAdmin):
    list_display = ("account_name", "status", "requested_at", "cancelled_at", "completed_at")
    list_filter = ("status",)
    search_fields = ("account_name",)
    # The status and its times move only through the job and the cancel action (constraints tie them).
    readonly_fields = (
        "status",
        "cancelled_at",
        "started_at",
        "stripe_cancelled_at",
        "completed_at",
        "last_error",
        "outcome",
    )
    actions = ["cancel"]

    @admin.action(description="Cancel the selected pending requests", permissions=["change"])
    def cancel(self, request, queryset):
        cancelled = deletion_requests_cancel(ids=list(queryset.values_list("pk", flat=True)), now=timezone.now())
        self.message_user(request, f"{cancelled} deletion request(s) cancelled.", messages.SUCCESS)
        if skipped := queryset.count() - cancelled:
            self.message_user(request, f"{skipped} were not pending and were left as they are.", messages.WARNING)


@admin.register(ErrorLog)
class ErrorLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account", "message")
    list_select_related = ("account",)
    search_fields = ("message",)
    show_full_result_count = False
