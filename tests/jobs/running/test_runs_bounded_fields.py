"""A run records at most JOBS_OUTPUT_LIMIT of output, error and summary, marked as truncated,
redacted before it is cut; what a job print()s is captured like self.stdout and never reaches
the worker's own stdout or stderr."""

from __future__ import annotations

import pytest

from jobs.models import JobRun
from jobs.running.runner import run_execute, run_trigger
from tests.jobs.conftest import API_KEY

pytestmark = pytest.mark.django_db
Status = JobRun.Status
MB = 1_000_000


def run_job(job) -> JobRun:
    run = run_trigger(job=job, triggered_by="manual", dispatch=False).run
    run_execute(run.pk)
    run.refresh_from_db()
    return run


def test_it_bounds_a_huge_summary_and_printed_output_with_a_visible_marker(make_job, staff_client, api, capfd):
    job = make_job("noisy", command="test_noisy_job")  # prints 30 MB, returns a 25 MB summary
    run = run_job(job)
    assert run.status == Status.SUCCEEDED, run.error[:500]
    assert run.summary["truncated"] is True and run.summary["size_bytes"] > 25 * MB
    assert run.summary["keys"][:2] == ["item-00000", "item-00001"] and len(str(run.summary)) < 2000
    assert len(run.output) < 70_000 and "truncated: " in run.output
    assert run.output.startswith("n" * 999) and "characters in all" in run.output
    page = staff_client.get(f"/dashboard/runs/{run.pk}/")
    assert page.status_code == 200 and len(page.content) < MB
    assert "truncated" in page.content.decode()
    assert len(api.get(f"/api/runs/{run.pk}").content) < MB
    out, err = capfd.readouterr()
    assert "n" * 999 not in out + err  # nothing the job printed reached the process's own streams


def test_it_bounds_a_huge_error_with_a_visible_marker(make_job, staff_client):
    job = make_job("noisy-fail", command="test_noisy_job", config={"error_kb": 21_000, "print_lines": 10})
    run = run_job(job)
    assert run.status == Status.FAILED
    assert run.error.startswith("RuntimeError: eeee") and "truncated: " in run.error
    assert len(run.error) < 70_000
    page = staff_client.get(f"/dashboard/runs/{run.pk}/")
    assert page.status_code == 200 and len(page.content) < MB


def test_it_redacts_before_cutting_so_no_piece_of_a_secret_survives_a_cut(make_job, settings):
    settings.JOBS_OUTPUT_LIMIT = 65536
    # The API key (a secret setting) over and over; with this period a plain cut of the first and
    # the last 32768 characters would leave 31 and 30 of its characters beside the marker.
    text = f"-{API_KEY}-"
    job = make_job(
        "leaky-noise",
        command="test_noisy_job",
        config={"print_lines": 0, "text": text, "text_times": 5000, "error_kb": 100},
    )
    run = run_job(job)
    assert run.status == Status.FAILED
    assert "truncated: " in run.output and "truncated: " in run.error
    assert "-[redacted]--[redacted]-" in run.output and "[redacted]" in run.error
    pieces = {API_KEY[i : i + 6] for i in range(len(API_KEY) - 5)}
    for field in (run.output, run.error):
        assert [piece for piece in pieces if piece in field] == []


def test_it_redacts_what_a_command_run_prints_and_raises(make_job, make_handler):
    make_handler(auth="bearer", secret="handler-token-Q7x2")  # a secret the database holds
    job = make_job("talkative", command="test_noisy_job", config={"print_lines": 0, "text": "handler-token-Q7x2"})
    run = run_job(job)
    assert run.status == Status.SUCCEEDED
    assert "handler-token-Q7x2" not in run.output and "[redacted]" in run.output
    job = make_job(
        "talkative-fail",
        command="test_noisy_job",
        config={"print_lines": 0, "text": "password=hunter22", "error_kb": 1},
    )
    run = run_job(job)
    assert run.status == Status.FAILED and "hunter22" not in run.error + run.output
    assert "password=[redacted]" in run.error
