"""Billing in the admin: an operations tool. Ledgers and corrections are read-only (append-only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.admin_columns import OneFormatAdmin, OneFormatTabularInline, ReadOnlyAdmin, when
from core.ratelimit import client_address

from .forms import PayoutSettleForm
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
from .services.payouts import payout_settle
from .services.statement_emails import statement_send_again


@admin.register(Owner)
class OwnerAdmin(OneFormatAdmin):
    list_display = ("name", "email", "management_fee_percent")
    search_fields = ("name", "email")


@admin.register(Property)
class PropertyAdmin(OneFormatAdmin):
    list_display = ("name", "owner", "address")
    list_select_related = ("owner",)
    search_fields = ("name", "owner__name")


@admin.register(Unit)
class UnitAdmin(OneFormatAdmin):
    list_display = ("name", "property")
    list_select_related = ("property",)
    search_fields = ("name", "property__name")


@admin.register(Tenant)
class TenantAdmin(OneFormatAdmin):
    list_display = ("name", "email", "autopay_enrolled")
    list_filter = ("autopay_enrolled",)
    search_fields = ("name", "email")


class LedgerInline(OneFormatTabularInline):
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
class LeaseAdmin(OneFormatAdmin):
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
class RecurringExpenseAdmin(OneFormatAdmin):
    list_display = ("description", "property", "amount", "day_of_month", "tenant_billable", "active")
    list_filter = ("active", "tenant_billable")
    list_select_related = ("property",)
    raw_id_fields = ("lease",)


@admin.register(Expense)
class ExpenseAdmin(OneFormatAdmin):
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
    readonly_fields = ("pdf_link", "deliveries")
    actions = ["send_again"]

    @admin.display(description="period", ordering="period")
    def month(self, obj: OwnerStatement) -> str:
        return f"{obj.period:%Y-%m}"

    @admin.display(description="PDF")
    def pdf_link(self, obj: OwnerStatement) -> str:
        if not obj.pdf:
            return "pending"
        url = reverse("admin:billing_ownerstatement_pdf", args=[obj.pk])
        return format_html('<a href="{}">Download</a>', url)

    @admin.display(description="e-mails to the owner")
    def deliveries(self, obj: OwnerStatement) -> str:
        rows = obj.deliveries.select_related("notification", "requested_by").order_by("requested_at", "pk")
        lines = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    when(d.requested_at),
                    d.get_kind_display() + (f" by {d.requested_by}" if d.requested_by else ""),
                    d.recipient,
                    d.status,
                    when(d.notification.sent_at) if d.notification and d.notification.sent_at else "-",
                )
                for d in rows
            ),
        )
        if not lines:
            return "not e-mailed yet"
        head = "<tr><th>queued</th><th>kind</th><th>to</th><th>status</th><th>sent</th></tr>"
        return format_html("<table>{}{}</table>", mark_safe(head), lines)

    def has_send_statement_permission(self, request) -> bool:
        return request.user.has_perm("billing.send_statement")

    @admin.action(description="Send again to the owner (e-mail with the PDF)", permissions=["send_statement"])
    def send_again(self, request, queryset):
        sent, skipped = selected_statements_resend(
            statements=queryset.select_related("owner"), actor=request.user, address=client_address(request)
        )
        self.message_user(request, f"{sent} statement(s) queued to their owner again.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} statement(s) have no PDF yet and were not sent.", messages.WARNING)

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


def selected_statements_resend(*, statements, actor, address: str = "") -> tuple[int, int]:
    """The "send again" action without a request: (queued, skipped for want of a PDF)."""
    sent = skipped = 0
    for statement in statements:
        if not statement.pdf:
            skipped += 1
            continue
        statement_send_again(statement=statement, actor=actor, now=timezone.now(), address=address)
        sent += 1
    return sent, skipped


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = ("period", "owner", "amount", "status", "reference", "reason", "submitted_at", "paid_at")
    list_filter = ("status", "period")
    list_select_related = ("owner",)
    search_fields = ("owner__name", "=reference", "=provider_id")
    actions = ["mark_paid", "mark_failed"]

    def has_settle_permission(self, request) -> bool:
        return request.user.has_perm("billing.settle_payout")

    @admin.action(description="Mark paid (with the payment's reference)…", permissions=["settle"])
    def mark_paid(self, request, queryset):
        return self.settle_view(request, queryset, outcome=Payout.Status.PAID, action="mark_paid")

    @admin.action(description="Mark failed (with the reason)…", permissions=["settle"])
    def mark_failed(self, request, queryset):
        return self.settle_view(request, queryset, outcome=Payout.Status.FAILED, action="mark_failed")

    def settle_view(self, request, queryset, *, outcome: str, action: str):
        """The intermediate page: a form for the reference or reason; on "apply", settle each payout."""
        form = PayoutSettleForm(request.POST if "apply" in request.POST else None, outcome=outcome)
        payouts = list(queryset.select_related("owner").order_by("pk"))
        if form.is_valid():
            settled = selected_payouts_settle(
                payouts=payouts,
                outcome=outcome,
                reference=form.cleaned_data.get("reference", ""),
                reason=form.cleaned_data.get("reason", ""),
                actor=request.user,
                address=client_address(request),
            )
            label = Payout.Status(outcome).label.lower()
            self.message_user(request, f"{settled} payout(s) marked {label}.", messages.SUCCESS)
            if settled < len(payouts):
                self.message_user(
                    request,
                    f"{len(payouts) - settled} payout(s) were not changed: their status does not allow it.",
                    messages.WARNING,
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Mark payouts {Payout.Status(outcome).label.lower()}",
            "opts": self.model._meta,
            "form": form,
            "payouts": payouts,
            "submitted": sum(p.status == Payout.Status.SUBMITTED for p in payouts),
            "outcome_label": Payout.Status(outcome).label.lower(),
            "action": action,
        }
        return TemplateResponse(request, "admin/billing/payout/settle.html", context)


def selected_payouts_settle(*, payouts, outcome: str, reference: str, reason: str, actor, address: str = "") -> int:
    """The settle actions without a request: how many payouts changed."""
    now = timezone.now()
    return sum(
        payout_settle(
            payout=payout, outcome=outcome, reference=reference, reason=reason, actor=actor, now=now, address=address
        )
        for payout in payouts
    )


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
