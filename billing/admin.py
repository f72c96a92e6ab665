"""Billing in the admin: an operations tool. Ledgers and corrections are read-only (append-only)."""

from __future__ import annotations

from django.contrib import admin
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from .models import (
    BalanceCorrection,
    BillingNotice,
    DailySnapshot,
    Expense,
    Lease,
    LedgerEntry,
    Owner,
    OwnerStatement,
    Payment,
    Payout,
    Property,
    RecurringExpense,
    SettlementMatch,
    SettlementRecord,
    Tenant,
    TenantInvoice,
    Unit,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by jobs: visible, filterable, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Owner)
class OwnerAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "management_fee_percent")
    search_fields = ("name", "email")


@admin.register(Property)
class PropertyAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "address")
    list_select_related = ("owner",)
    search_fields = ("name", "owner__name")


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ("name", "property")
    list_select_related = ("property",)
    search_fields = ("name", "property__name")


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "autopay_enrolled")
    list_filter = ("autopay_enrolled",)
    search_fields = ("name", "email")


class LedgerInline(admin.TabularInline):
    model = LedgerEntry
    fk_name = "lease"
    extra = 0
    can_delete = False
    fields = ("posted_on", "kind", "category", "description", "amount", "due_date", "applies_to")
    readonly_fields = fields
    ordering = ("-posted_on", "-id")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant", "unit", "start_date", "end_date", "monthly_rent", "due_day", "status", "balance")
    list_filter = ("status", "due_day")
    list_select_related = ("tenant", "unit__property")
    search_fields = ("tenant__name", "tenant__email", "unit__property__name")
    readonly_fields = ("balance",)
    raw_id_fields = ("unit", "tenant")
    inlines = [LedgerInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("posted_on", "lease", "kind", "category", "description", "amount", "due_date")
    list_filter = ("kind", "category", "period")
    list_select_related = ("lease__tenant", "lease__unit__property")
    search_fields = ("description", "lease__tenant__name")
    date_hierarchy = "posted_on"


@admin.register(BalanceCorrection)
class BalanceCorrectionAdmin(ReadOnlyAdmin):
    list_display = ("corrected_at", "lease", "before", "after", "difference")
    list_select_related = ("lease__tenant", "lease__unit__property")
    date_hierarchy = "corrected_at"


@admin.register(RecurringExpense)
class RecurringExpenseAdmin(admin.ModelAdmin):
    list_display = ("description", "property", "amount", "day_of_month", "tenant_billable", "active")
    list_filter = ("active", "tenant_billable")
    list_select_related = ("property",)
    raw_id_fields = ("lease",)


@admin.register(Expense)
class ExpenseAdmin(admin.ModelAdmin):
    list_display = ("period", "property", "description", "amount", "tenant_billable", "template")
    list_filter = ("period", "tenant_billable")
    list_select_related = ("property", "template")


@admin.register(TenantInvoice)
class TenantInvoiceAdmin(ReadOnlyAdmin):
    list_display = ("id", "lease", "description", "amount", "issued_on", "due_date", "status")
    list_filter = ("status",)
    list_select_related = ("lease__tenant", "lease__unit__property")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("received_on", "lease", "amount", "method", "processor_reference")
    list_filter = ("method",)
    list_select_related = ("lease__tenant", "lease__unit__property")
    search_fields = ("processor_reference", "lease__tenant__name")


@admin.register(SettlementRecord)
class SettlementRecordAdmin(ReadOnlyAdmin):
    list_display = ("processor_reference", "amount", "settled_on", "source", "imported_at")
    list_filter = ("source", "settled_on")
    search_fields = ("processor_reference",)


@admin.register(SettlementMatch)
class SettlementMatchAdmin(ReadOnlyAdmin):
    list_display = ("recorded_at", "outcome", "reference", "local_amount", "processor_amount", "difference")
    list_filter = ("outcome",)
    list_select_related = ("settlement", "payment")
    search_fields = ("settlement__processor_reference", "payment__processor_reference")

    @admin.display(description="Reference")
    def reference(self, obj: SettlementMatch) -> str:
        return (obj.settlement or obj.payment).processor_reference


@admin.register(OwnerStatement)
class OwnerStatementAdmin(ReadOnlyAdmin):
    # Fits a 1366 px screen beside the filters, the Download link included.
    list_display = ("month", "owner", "rent_billed", "rent_collected", "expenses", "net", "closing_balance", "pdf_link")
    list_filter = ("period",)
    list_select_related = ("owner",)
    search_fields = ("owner__name",)
    # The stored file's own link would point under MEDIA_URL, where statements are never served:
    # the page links to pdf_view instead.
    exclude = ("pdf",)
    readonly_fields = ("pdf_link",)

    @admin.display(description="period", ordering="period")
    def month(self, obj: OwnerStatement) -> str:
        return f"{obj.period:%Y-%m}"

    @admin.display(description="PDF")
    def pdf_link(self, obj: OwnerStatement) -> str:
        if not obj.pdf:
            return "pending"
        url = reverse("admin:billing_ownerstatement_pdf", args=[obj.pk])
        return format_html('<a href="{}">Download</a>', url)

    def get_urls(self):
        download = path("<int:pk>/pdf/", self.admin_site.admin_view(self.pdf_view), name="billing_ownerstatement_pdf")
        return [download, *super().get_urls()]

    def pdf_view(self, request, pk: int):
        """Staff with view permission download the stored PDF (files are not served publicly)."""
        statement = get_object_or_404(OwnerStatement, pk=pk)
        if not self.has_view_permission(request, statement):
            raise Http404
        if not statement.pdf:
            raise Http404("This statement's PDF is not rendered yet.")
        filename = f"statement-{statement.period:%Y-%m}-{statement.owner.name}.pdf".replace(" ", "-")
        return FileResponse(
            statement.pdf.open("rb"), content_type="application/pdf", as_attachment=True, filename=filename
        )


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = ("period", "owner", "amount", "status", "reason", "created_at")
    list_filter = ("status", "period")
    list_select_related = ("owner",)


@admin.register(BillingNotice)
class BillingNoticeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "tier", "period", "dedupe_key", "sent_on")
    list_filter = ("kind", "tier")
    search_fields = ("dedupe_key",)


@admin.register(DailySnapshot)
class DailySnapshotAdmin(ReadOnlyAdmin):
    list_display = (
        "day",
        "rent_billed_mtd",
        "rent_collected_mtd",
        "occupancy_percent",
    )
