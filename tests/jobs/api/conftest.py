"""Fixtures of the API tests: JSON requests with any method."""

from __future__ import annotations

import json

import pytest

from tests.jobs.conftest import API_KEY


@pytest.fixture
def rest(client):
    """``rest(method, url, data)``: a JSON request with the bootstrap key (or ``token=``, or the
    client's session with ``token=None``); ``raw=`` sends a body as it is."""

    def call(method: str, url: str, data=None, *, token=API_KEY, raw=None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
        body = raw if raw is not None else (json.dumps(data) if data is not None else "")
        return getattr(client, method)(url, body, content_type="application/json", **headers)

    return call
