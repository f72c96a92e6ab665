"""One rule for a missing service: skip on a developer machine, FAIL under CI=true."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def service_missing(what: str) -> None:
    message = f"{what} is not available"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: service-backed tests must not skip)", pytrace=False)
    pytest.skip(message)
