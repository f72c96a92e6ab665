"""Error pages hold no secret and list no URLs: DEBUG is off unless asked for, and even a debug
page shows every secret as hidden (core/safe_errors.py)."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from django.conf import settings as django_settings

from jobs.api import views as api_views
from tests.jobs.conftest import API_KEY
from tests.process_group import free_port, process_env

pytestmark = pytest.mark.django_db
RUN = "/api/jobs/run"

NOT_FOUND_PAGE = """
import django
django.setup()
from django.conf import settings
from django.test import Client
response = Client().get("/no-such-page/")
print("DEBUG", settings.DEBUG, "STATUS", response.status_code, "LISTS_URLS", b"api/jobs/run" in response.content)
"""


def not_found_page(**env) -> str:
    """What a fresh process, configured as the distributed mode with ``env``, shows for an unknown URL."""
    environment = process_env(CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0", **env)
    for name in ("DEBUG", "CRONHOUSE_MODE"):
        if name not in env:
            environment.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", NOT_FOUND_PAGE],
        cwd=django_settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_it_lists_no_url_patterns_on_the_404_page_of_the_distributed_mode():
    assert not_found_page() == "DEBUG False STATUS 404 LISTS_URLS False"


def test_it_turns_debug_on_only_when_asked_for():
    assert not_found_page(DEBUG="true") == "DEBUG True STATUS 404 LISTS_URLS True"


def test_it_lists_no_url_patterns_to_an_anonymous_visitor(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"api/jobs/run" not in response.content and b"dashboard" not in response.content


def test_it_shows_no_secret_on_the_debug_page_of_a_failing_api_request(api, client, make_job, settings, monkeypatch):
    """The attack: DEBUG on, an API request that errors, read the frame variables off the page."""
    settings.DEBUG = True
    settings.EMAIL_HOST_PASSWORD = f"smtp-{uuid.uuid4().hex}"  # made here: the page shows source lines
    make_job("nightly")

    def explode(**kwargs):
        held = settings.JOBS_SECRET_KEY  # careless code holding a secret in a local
        raise RuntimeError(f"trigger failed holding {held} with Bearer {held}")

    monkeypatch.setattr(api_views, "run_request", explode)
    client.raise_request_exception = False
    response = api.post(RUN, {"job": "nightly"})
    assert response.status_code == 500
    page = response.content.decode()
    assert "RuntimeError" in page and "explode" in page and "wrapper" in page  # the debug page, with frames
    secrets = [API_KEY, settings.SECRET_KEY, settings.EMAIL_HOST_PASSWORD, *settings.JOBS_SECRETS_ENCRYPTION_KEY]
    assert [secret for secret in secrets if secret in page] == []
    assert "********" in page  # hidden, not missing


def test_it_shows_no_secret_in_the_plain_text_debug_answer(api, client, make_job, settings, monkeypatch):
    """curl without Accept: text/html gets the text version of the same report."""
    settings.DEBUG = True
    make_job("nightly")

    def explode(**kwargs):
        raise RuntimeError(f"failed with key {settings.JOBS_SECRET_KEY}")

    monkeypatch.setattr(api_views, "run_request", explode)
    client.raise_request_exception = False
    response = api.post(RUN, {"job": "nightly"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 500 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "RuntimeError" in text and API_KEY not in text
