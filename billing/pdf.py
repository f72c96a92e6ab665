"""The owner statement as a PDF (reportlab's platypus: flowing tables on A4/Letter pages)."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO

from django.conf import settings
from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .periods import month_end, month_label
from .selectors import OwnerMonth

GRID = colors.HexColor("#c8ccd2")
SHADE = colors.HexColor("#f1f3f5")


def money(value: Decimal) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def statement_pdf(month: OwnerMonth, *, statement_number: str) -> bytes:
    """Letterhead, owner and period, the summary, one row per property, the expense lines."""
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["Normal"], fontSize=8, textColor=colors.HexColor("#555555"))
    buffer = BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=LETTER,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"Owner statement {month_label(month.period)} - {month.name}",
        author=settings.BILLING_COMPANY_NAME,
    )
    story = [
        Paragraph(settings.BILLING_COMPANY_NAME, styles["Title"]),
        Paragraph(settings.BILLING_COMPANY_ADDRESS, small),
        Spacer(1, 6 * mm),
        _header_table(month, statement_number, styles),
        Spacer(1, 6 * mm),
        Paragraph("Summary", styles["Heading2"]),
        _summary_table(month),
        Spacer(1, 4 * mm),
        Paragraph("By property", styles["Heading2"]),
        _property_table(month),
    ]
    if month.expense_lines:
        names = {pk: p.name for pk, p in month.properties.items()}
        story += [Spacer(1, 4 * mm), Paragraph("Expenses", styles["Heading2"]), _expense_table(month, names)]
    story += [
        Spacer(1, 8 * mm),
        Paragraph(
            f"Management fee: {month.fee_percent}% of rent collected. Net = rent collected + other income "
            "- expenses - management fee. Closing balance = opening balance + net - payouts.",
            small,
        ),
    ]
    footer = f"{settings.BILLING_COMPANY_NAME} - owner statement {statement_number}"

    def on_page(canvas, document) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(colors.HexColor("#777777"))
        canvas.drawString(document.leftMargin, 9 * mm, footer)
        canvas.drawRightString(LETTER[0] - document.rightMargin, 9 * mm, f"Page {document.page}")
        canvas.restoreState()

    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()


def _styled(rows: list[list], widths: list[float], *, total_row: bool = False, text_columns: int = 1) -> Table:
    """Header row shaded and repeated on every page; money columns right-aligned."""
    table = Table(rows, colWidths=widths, hAlign="LEFT", repeatRows=1)
    style = [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 9),
        ("BACKGROUND", (0, 0), (-1, 0), SHADE),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, GRID),
        ("ALIGN", (text_columns, 0), (-1, -1), "RIGHT"),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
    ]
    if total_row:
        style += [("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 9), ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black)]
    table.setStyle(TableStyle(style))
    return table


def _header_table(month: OwnerMonth, number: str, styles) -> Table:
    period = f"{month.period:%b} 1 - {month_end(month.period):%b %d, %Y}"
    rows = [
        [
            Paragraph(f"<b>Statement for</b><br/>{month.name}<br/>{month.address or ''}", styles["Normal"]),
            Paragraph(f"<b>Owner statement</b><br/>No. {number}<br/>Period: {period}", styles["Normal"]),
        ],
    ]
    return Table(rows, colWidths=[95 * mm, 80 * mm], hAlign="LEFT", style=[("VALIGN", (0, 0), (-1, -1), "TOP")])


def _summary_table(month: OwnerMonth) -> Table:
    rows = [
        ["", "Amount"],
        ["Opening balance", money(month.opening_balance)],
        ["Rent billed", money(month.rent_billed)],
        ["Rent collected", money(month.rent_collected)],
        ["Other income", money(month.other_income)],
        ["Expenses", money(-month.expenses)],
        [f"Management fee ({month.fee_percent}%)", money(-month.management_fee)],
        ["Net for the month", money(month.net)],
        ["Payouts", money(-month.payouts)],
        ["Closing balance", money(month.closing_balance)],
    ]
    return _styled(rows, [110 * mm, 45 * mm], total_row=True)


def _property_table(month: OwnerMonth) -> Table:
    rows = [["Property", "Units", "Billed", "Collected", "Other", "Expenses"]]
    for prop in month.properties.values():
        rows.append(
            [
                prop.name,
                str(prop.units),
                money(prop.rent_billed),
                money(prop.rent_collected),
                money(prop.other_income),
                money(prop.expenses),
            ]
        )
    rows.append(
        [
            "Total",
            str(sum(p.units for p in month.properties.values())),
            money(month.rent_billed),
            money(month.rent_collected),
            money(month.other_income),
            money(month.expenses),
        ]
    )
    return _styled(rows, [55 * mm, 14 * mm, 26 * mm, 26 * mm, 22 * mm, 26 * mm], total_row=True)


def _expense_table(month: OwnerMonth, names: dict[int, str]) -> Table:
    rows = [["Date", "Property", "Description", "Amount"]]
    for line in month.expense_lines:
        rows.append(
            [
                line["incurred_on"].isoformat(),
                names.get(line["property_id"], ""),
                line["description"],
                money(line["amount"]),
            ]
        )
    rows.append(["", "", "Total", money(month.expenses)])
    return _styled(rows, [24 * mm, 50 * mm, 70 * mm, 26 * mm], total_row=True, text_columns=3)
