"""What the dashboard pages show: one format for moments (site zone, seconds, the zone named) and
durations, summaries as JSON, the duration chart, a sub-minute job's next runs to the second, and
the JSON the job and run pages refresh themselves from."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from core.formatting import format_datetime, format_duration
from jobs.models import JobRun

pytestmark = pytest.mark.django_db
Status = JobRun.Status
MOMENT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:(\d\d) UTC")
START = datetime(2026, 12, 2, 14, 3, 22, tzinfo=UTC)


def finished_run(job, seconds: float, status=Status.SUCCEEDED, at: datetime = START, **fields) -> JobRun:
    return JobRun.objects.create(
        job=job,
        triggered_by="schedule",
        status=status,
        started_at=at,
        finished_at=at + timedelta(seconds=seconds),
        duration=timedelta(seconds=seconds),
        error="boom" if status == Status.FAILED else "",
        **fields,
    )


def chart_of(page: str) -> str:
    return re.search(r'<svg class="chart".*?</svg>', page, re.S).group(0)


@pytest.mark.nodb
@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (0.053, "53 ms"),
        (0.9996, "1.0 s"),
        (4.24, "4.2 s"),
        (59.97, "1 min 00 s"),
        (185, "3 min 05 s"),
        (3599.7, "1 h 00 min"),
        (3720, "1 h 02 min"),
        (timedelta(hours=26, minutes=5), "26 h 05 min"),
    ],
)
def test_it_shows_a_duration_in_the_unit_a_reader_takes_in(seconds, shown):
    assert format_duration(seconds) == shown


@pytest.mark.nodb
def test_it_shows_a_moment_in_the_sites_zone_with_seconds_and_names_the_zone(settings):
    assert format_datetime(START) == "2026-12-02 14:03:22 UTC"
    assert format_datetime("2026-12-02T14:03:22+00:00") == "2026-12-02 14:03:22 UTC"
    settings.TIME_ZONE = "Europe/Berlin"
    assert format_datetime(START) == "2026-12-02 15:03:22 CET"
    assert format_datetime(None) == "-"


def test_it_shows_every_moment_on_the_run_page_in_one_format_and_the_summary_as_json(staff_client, make_job):
    run = finished_run(make_job("nightly"), 3.2, summary={"charges_created": 2, "lease_ids": [4, 7]})
    page = staff_client.get(f"/dashboard/runs/{run.pk}/").content.decode()
    assert "2026-12-02 14:03:22 UTC" in page and "2026-12-02 14:03:25 UTC" in page and "3.2 s" in page
    # Indented JSON (PostgreSQL keeps its own key order).
    assert "<pre>{\n  &quot;" in page and "\n  &quot;charges_created&quot;: 2" in page
    assert "\n  &quot;lease_ids&quot;: [\n    4,\n    7\n  ]" in page
    assert "{&#x27;" not in page  # never a Python repr


def test_it_charts_durations_with_a_seconds_axis_an_expected_line_and_red_failures(staff_client, make_job):
    job = make_job("nightly", expected_duration_seconds=5)
    first = finished_run(job, 3.2)
    failed = finished_run(job, 7.5, Status.FAILED, at=START + timedelta(hours=1))
    finished_run(job, 1.0, at=START + timedelta(hours=2))
    chart = chart_of(staff_client.get("/dashboard/jobs/nightly/").content.decode())
    assert ">duration (seconds)</text>" in chart and ">started</text>" in chart and 'viewBox="0 0 600' in chart
    assert re.search(r'stroke-dasharray="[\d ]+"', chart) and "<title>expected 5.0 s</title>" in chart
    assert chart.count('class="dot failed"') == 1 and chart.count('class="dot"') == 2
    assert f"<title>run #{first.pk} · 3.2 s · succeeded · 2026-12-02 14:03:22 UTC</title>" in chart
    assert f"<title>run #{failed.pk} · 7.5 s · failed · 2026-12-02 15:03:22 UTC</title>" in chart
    for tick in ("0", "2", "4", "6", "8"):  # round steps up to the longest run
        assert f'text-anchor="end">{tick}</text>' in chart


def test_it_scales_the_chart_to_the_runs_shown_not_to_a_far_longer_expected_duration(staff_client, make_job):
    job = make_job("quick", expected_duration_seconds=3600)
    finished_run(job, 0.022)
    finished_run(job, 0.040, at=START + timedelta(hours=1))

    chart = chart_of(staff_client.get("/dashboard/jobs/quick/").content.decode())

    assert ">duration (milliseconds)</text>" in chart
    assert [tick for tick in re.findall(r'text-anchor="end">([\d.]+)</text>', chart)] == ["0", "10", "20", "30", "40"]
    assert "expected 1 h 00 min (above every run shown)" in chart and "stroke-dasharray" not in chart
    heights = [float(y) for y in re.findall(r'<circle class="dot" cx="[\d.]+" cy="([\d.]+)"', chart)]
    baseline, top = 250 - 56, 22
    assert heights[1] == pytest.approx(top, abs=1) and baseline - heights[0] > 80  # 22 ms: about half-way up


def test_it_writes_the_sparklines_scale_beside_it(staff_client, make_job):
    job = make_job("quick", expected_duration_seconds=3600)
    finished_run(job, 0.022)
    finished_run(job, 1.4, at=START + timedelta(hours=1))

    sparkline = staff_client.get("/dashboard/data.json").json()["jobs"][0]["sparkline_svg"]

    assert re.search(r'<g class="scale"[^>]*><text [^>]*>1\.4 s</text><text [^>]*>0</text></g>', sparkline)
    assert "stroke-dasharray" not in sparkline  # an hour is far above a 1.4 s scale


def test_it_draws_no_expected_line_for_a_job_without_one_and_a_dot_for_a_single_run(staff_client, make_job):
    run = finished_run(make_job("nightly"), 0.4)
    chart = chart_of(staff_client.get("/dashboard/jobs/nightly/").content.decode())
    assert "stroke-dasharray" not in chart and "<polyline" not in chart
    assert chart.count("<circle") == 1 and f"run #{run.pk} · 400 ms · succeeded" in chart
    sparkline = staff_client.get("/dashboard/data.json").json()["jobs"][0]["sparkline_svg"]
    assert sparkline.count("<circle") == 1 and "<polyline" not in sparkline


def test_it_lists_a_30_second_jobs_next_runs_to_the_second(staff_client, make_job):
    make_job("every-30-s", interval_seconds=30)

    def times(html: str) -> list[datetime]:
        found = re.findall(r"<time datetime=\"[^\"]+\">(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC</time>", html)
        return [datetime.strptime(text, "%Y-%m-%d %H:%M:%S") for text in found]

    job_page = staff_client.get("/dashboard/jobs/every-30-s/").content.decode()
    listed = times(job_page.split('id="next-runs"')[1].split("</ol>")[0])
    assert len(listed) == 5 and all(moment.second in (0, 30) for moment in listed)
    assert all(later - earlier == timedelta(seconds=30) for earlier, later in zip(listed, listed[1:], strict=False))
    dashboard = staff_client.get("/dashboard/").content.decode()
    next_cell = dashboard.split('data-field="next_run"')[1].split("</td>")[0]
    assert times(next_cell)[0].second in (0, 30)
    assert MOMENT.fullmatch(staff_client.get("/dashboard/data.json").json()["jobs"][0]["next_run_text"])
    schedule = staff_client.get("/dashboard/schedule/").content.decode()
    on_schedule = times(schedule.split('data-label="Next runs"')[1].split("</td>")[0])
    assert len(on_schedule) == 3 and len(set(on_schedule)) == 3 and {t.second for t in on_schedule} <= {0, 30}


def test_it_serves_a_running_runs_page_data_with_the_texts_the_page_shows(staff_client, make_job):
    job = make_job("progress-job", command="test_progress_job")
    run = JobRun.objects.create(
        job=job,
        triggered_by="manual",
        status=Status.RUNNING,
        started_at=timezone.now() - timedelta(seconds=10),
        progress_done=500,
        progress_total=2000,
    )
    page = staff_client.get(f"/dashboard/runs/{run.pk}/").content.decode()
    assert "500 of 2,000 (25 %), about" in page and "s so far" in page
    data = staff_client.get(f"/dashboard/runs/{run.pk}/", HTTP_ACCEPT="application/json").json()
    assert data["status"] == "running" and data["progress"]["done"] == 500
    assert re.fullmatch(r"500 of 2,000 \(25 %\), about 3\d\.\d s left", data["texts"]["progress"])
    assert re.fullmatch(r"1\d\.\d s so far", data["texts"]["duration"])
    assert re.fullmatch(r"Updated \d\d:\d\d:\d\d UTC", data["updated"])


def test_it_serves_the_job_page_data_with_its_runs_chart_and_next_runs(staff_client, make_job):
    job = make_job("nightly", cron_expression="0 6 * * *")
    done = finished_run(job, 2.0)
    waiting = JobRun.objects.create(job=job, triggered_by="manual", status=Status.QUEUED)
    data = staff_client.get("/dashboard/jobs/nightly/", HTTP_ACCEPT="application/json").json()
    assert [run["id"] for run in data["runs"]] == [waiting.pk, done.pk]
    assert data["runs"][1]["texts"]["duration"] == "2.0 s" and data["runs"][0]["status"] == "queued"
    assert data["latest"]["id"] == waiting.pk and data["job"]["status"] == "running"
    assert data["chart_svg"].startswith('<svg class="chart"') and len(data["next_runs"]) == 5
    assert all(MOMENT.fullmatch(text) and text.endswith("06:00:00 UTC") for text in data["next_runs"])
