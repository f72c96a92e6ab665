"""Fixtures for the embedded mode: SQLite file database + kombu's filesystem:// broker."""

from __future__ import annotations

import shutil

import pytest
from django.conf import settings


def _empty(folder) -> None:
    for entry in folder.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


@pytest.fixture
def embedded_broker():
    """The filesystem broker folder this test process and its workers share, emptied around the test.

    Workers started by ``processes`` inherit CRONHOUSE_VAR_DIR (and CRONHOUSE_BROKER_DIR, if
    set), so they read the same ``settings.BROKER_DIR`` this process publishes into. Messages
    left over from an earlier test would otherwise be consumed by this test's worker.
    """
    if not settings.EMBEDDED_BROKER:
        pytest.fail("embedded-mode tests need the filesystem:// broker (unset CELERY_BROKER_URL)")
    queue = settings.BROKER_DIR / "queue"
    _empty(queue)
    yield settings.BROKER_DIR
    _empty(queue)
