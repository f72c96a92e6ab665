"""A command's summary is shown on the run page and the API: a stored secret it reports is masked
there as in the output, in values and keys alike."""

from __future__ import annotations

import base64

import pytest

from jobs.models import JobRun
from jobs.running.runner import run_execute, run_trigger

pytestmark = pytest.mark.django_db
PLANTED = "PLANTED-summary-s3cret-d0-not-leak"


@pytest.mark.parametrize("reported", [PLANTED, base64.b64encode(PLANTED.encode()).decode()])
def test_it_masks_a_stored_secret_a_command_puts_in_its_summary(make_job, make_handler, staff_client, reported):
    make_handler(secret=PLANTED)
    job = make_job("careless-report", config={"report": f"token={reported}"})
    run = run_execute(run_trigger(job=job, triggered_by="manual", dispatch=False).run.pk)

    assert run.status == JobRun.Status.SUCCEEDED
    assert run.summary["report"] == ["token=[redacted]"]
    for page in (f"/api/runs/{run.pk}", f"/admin/jobs/jobrun/{run.pk}/change/", f"/dashboard/runs/{run.pk}/"):
        answer = staff_client.get(page)
        assert answer.status_code == 200, page
        assert reported not in answer.content.decode(), page
