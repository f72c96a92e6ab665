"""Errors to Sentry when SENTRY_DSN is set: a failed run arrives at the Sentry server (here a
local HTTP server standing in for it), with secrets masked as everywhere else."""

from __future__ import annotations

import gzip
import logging
import subprocess
import sys
import zlib

import pytest
import sentry_sdk

from config.sentry import sentry_start
from jobs.models import JobRun
from jobs.running.runner import run_execute, run_trigger

pytestmark = pytest.mark.django_db
SECRET = "handler-secret-value-42"


def _decoded(request: dict) -> str:
    body, encoding = request["body"], request["headers"].get("Content-Encoding", "")
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    elif encoding == "br":
        import brotli

        body = brotli.decompress(body)
    return body.decode()


@pytest.fixture
def sentry_server(receiver):
    """sentry-sdk started as config/settings.py starts it, with a DSN naming the local receiver;
    the envelopes it received, decoded. Stopped afterwards (no DSN: nothing is sent)."""
    port = receiver.url.split(":")[2].split("/")[0]
    sentry_start(dsn=f"http://publickey@127.0.0.1:{port}/42", environment="test")

    def envelopes() -> list[str]:
        sentry_sdk.flush(timeout=5)
        return [_decoded(r) for r in receiver.requests if r["path"].startswith("/api/42/envelope/")]

    yield envelopes
    sentry_sdk.get_client().close()
    sentry_sdk.init(trace_propagation_targets=[])  # no DSN: the SDK is off again for the rest of the session


def test_it_sends_a_failed_runs_exception_to_sentry_with_stored_secrets_masked(sentry_server, make_job, make_handler):
    make_handler("erp", secret=SECRET)
    job = make_job("sync-erp", command="test_fail_job", config={"message": f"login refused for {SECRET}"})
    run = run_execute(run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run.pk)
    assert run.status == JobRun.Status.FAILED

    sent = "\n".join(sentry_server())
    assert f"run failed job=sync-erp run={run.pk}" in sent
    assert "RuntimeError: login refused for [redacted]" in sent
    assert SECRET not in sent


def test_it_masks_secrets_in_exceptions_log_lines_and_breadcrumbs_before_they_leave(
    sentry_server, make_handler, settings
):
    make_handler("erp", secret=SECRET)
    logging.getLogger("cronhouse.test").info("calling the ERP with Authorization: Bearer abc.def.ghi")
    logging.getLogger("cronhouse.test").error("ERP refused %s", SECRET)
    try:
        raise ValueError(f"connect failed: postgres://app:s3cr3t-pass@db:5432/app and {SECRET}")
    except ValueError as exc:
        sentry_sdk.capture_exception(exc)

    sent = "\n".join(sentry_server())
    assert "ERP refused [redacted]" in sent and "connect failed: postgres://app:[redacted]@db" in sent
    assert "calling the ERP" in sent  # the breadcrumb went, masked
    for secret in (SECRET, "s3cr3t-pass", "abc.def.ghi"):
        assert secret not in sent, secret
    assert '"vars"' not in sent  # no frame's local variables leave


@pytest.mark.nodb
def test_it_loads_no_sentry_client_without_a_dsn():
    code = (
        "import os, django; os.environ.pop('SENTRY_DSN', None);"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; django.setup();"
        "import sentry_sdk; print(sentry_sdk.get_client().is_active())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
