"""The admin's busiest lists on a 1366 x 768 screen, in headless Chromium, with rows as operators
see them (long job names, a long error, long addresses, several statements): nothing spills past
the screen or needs a sideways scroll, long text is one line with all of it on hover, and the
statements' Download link is on screen and gives the PDF. Screenshots go to test-artifacts/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import Owner, OwnerStatement
from billing.services.statements import statements_generate
from jobs.models import Job, JobRun
from notifications.models import Notification
from tests.processes.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-admin-lists-123456789"
SCREEN = {"width": 1366, "height": 768}
LONG_NAME = "nightly-owner-statement-reconciliation-for-every-property-portfolio-in-the-eu-region"
LONG_ERROR = (
    "psycopg.errors.SerializationFailure: could not serialize access due to concurrent update of the "
    "ledger entries of lease 4711 while reconciling the settlement batch 2026-11-30 " + "x" * 300 + "\n"
    'Traceback (most recent call last):\n  File "billing/services/reconciliation.py", line 212, in reconcile\n'
)
LONG_ADDRESS = "accounts.payable.team.for.the.northern.portfolio@subsidiary.example-property-management.co.uk"
LISTS = {
    "jobs": "/admin/jobs/job/",
    "runs": "/admin/jobs/jobrun/",
    "notifications": "/admin/notifications/notification/",
    "statements": "/admin/billing/ownerstatement/",
}


@pytest.fixture
def operator_rows(make_job):
    now = timezone.now()
    for name in ("generate-charges", "process-notifications", "financial-reconciliation", LONG_NAME):
        make_job(name, cron_expression="0 6 1 * *")
    job = Job.objects.get(name=LONG_NAME)
    for minutes, (status, error) in enumerate([("failed", LONG_ERROR), ("succeeded", ""), ("timed_out", "Timed out")]):
        started = now - timedelta(minutes=minutes * 10)
        JobRun.objects.create(
            job=job,
            status=status,
            triggered_by="schedule",
            started_at=started,
            finished_at=started + timedelta(seconds=3723),
            duration=timedelta(seconds=3723),
            error=error,
        )
    Job.objects.filter(pk=job.pk).update(
        last_run_at=now, last_run_status="failed", last_duration=timedelta(seconds=3723), consecutive_failures=12
    )
    for recipient, status in [(LONG_ADDRESS, "retrying"), ("owner1@example.com", "sent"), ("t@example.com", "dead")]:
        Notification.objects.create(
            recipient=recipient,
            template="accounts/subscription_expired",
            status=status,
            send_after=now,
            attempts=3,
            sent_at=now if status == "sent" else None,
            last_error="" if status == "sent" else LONG_ERROR,
        )
    call_command(
        "seed_demo", apps=["billing"], size="small", seed=3, verbosity=0
    )  # owners, leases and a month of statements
    Owner.objects.filter(pk=Owner.objects.order_by("pk").first().pk).update(
        name="Northern Lights Property Holdings International Limited Partnership"
    )
    statements_generate(now=now)  # and last month's
    assert OwnerStatement.objects.exclude(pdf="").count() >= 4


@pytest.fixture
def screen(page, live_server, django_user_model):
    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    page.set_viewport_size(SCREEN)
    log_in(page, live_server, "ops", PASSWORD, next_url="/admin/")
    expect(page.locator("#site-name")).to_be_visible()
    return page


def sideways_overflow(page) -> dict:
    """How far the page, and the list inside its own scroll box, reach past what is shown (px)."""
    return page.evaluate(
        """() => {
            const results = document.querySelector('#changelist-form .results');
            return {
                page: document.documentElement.scrollWidth - window.innerWidth,
                list: results.scrollWidth - results.clientWidth,
            };
        }"""
    )


def test_it_fits_the_four_lists_on_a_1366_screen(screen, live_server, operator_rows, artifacts):
    for name, url in LISTS.items():
        screen.goto(f"{live_server.url}{url}")
        expect(screen.locator("#result_list")).to_be_visible()
        screen.screenshot(path=str(artifacts / f"admin-{name}-1366.png"))
        assert sideways_overflow(screen) == {"page": 0, "list": 0}, name


def test_it_cuts_long_errors_to_one_line_with_all_of_it_on_hover(screen, live_server, operator_rows):
    for url, column in [(LISTS["runs"], "error_line"), (LISTS["notifications"], "error_excerpt")]:
        screen.goto(f"{live_server.url}{url}?q=")
        cell = screen.locator(f"td.field-{column} .one-line[title^='psycopg']").first
        assert cell.get_attribute("title") == LONG_ERROR
        box = cell.bounding_box()
        assert box["height"] < 30 and box["x"] + box["width"] <= SCREEN["width"]  # one line, on screen
        assert cell.evaluate("e => e.scrollWidth > e.clientWidth")  # cut, with the ellipsis
    screen.goto(f"{live_server.url}{LISTS['runs']}")
    expect(screen.locator("td.field-started time").first).to_have_text(
        timezone.localtime(JobRun.objects.order_by("-id").first().started_at).strftime("%Y-%m-%d %H:%M:%S UTC")
    )


def test_it_downloads_a_statement_pdf_from_the_list(screen, live_server, operator_rows):
    screen.goto(f"{live_server.url}{LISTS['statements']}")
    links = screen.get_by_role("link", name="Download")
    assert links.count() == OwnerStatement.objects.count()
    link = links.first
    expect(link).to_be_in_viewport()
    box = link.bounding_box()
    assert box["x"] + box["width"] <= SCREEN["width"]
    response = screen.request.get(f"{live_server.url}{link.get_attribute('href')}")
    assert (response.status, response.headers["content-type"]) == (200, "application/pdf")
    assert response.body().startswith(b"%PDF-")
    with screen.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.endswith(".pdf")
