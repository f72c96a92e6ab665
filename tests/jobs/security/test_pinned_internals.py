"""The two places that use library internals, because the libraries offer no public hook:

* ``jobs/scheduling/beat.py`` (beat leadership): a standby that becomes leader drops the entries it read
  while standing by through django-celery-beat's ``_initial_read``, ``_last_timestamp`` and
  Celery's ``_heap``;
* ``core/http_guard.py`` (the outbound-HTTP guard): it connects to the address it checked by
  overriding urllib3's ``HTTPConnection._new_conn``, reading ``_dns_host``.

celery, django-celery-beat, kombu and urllib3 are pinned exactly in requirements.txt. These tests
fail when an upgrade removes or renames what the two modules rely on, before anything else breaks
silently (a renamed ``_new_conn`` would let the guard's check be bypassed).
"""

from __future__ import annotations

import pytest
from celery import current_app
from urllib3.connection import HTTPConnection

from core.http_guard import GuardedHTTPConnection, GuardedHTTPSConnection
from jobs.scheduling.beat import LeaderDatabaseScheduler


@pytest.mark.django_db
def test_it_finds_the_scheduler_state_beat_leadership_resets():
    scheduler = LeaderDatabaseScheduler(app=current_app, lazy=True)
    try:
        for name in ("_initial_read", "_heap", "_last_timestamp"):
            assert hasattr(scheduler, name), f"{name} is gone: jobs/scheduling/beat.py must be revisited"
    finally:
        scheduler.close()


def test_it_finds_the_urllib3_connection_hook_the_guard_overrides():
    assert "_new_conn" in vars(HTTPConnection), "urllib3 no longer builds sockets in _new_conn"
    for guarded in (GuardedHTTPConnection, GuardedHTTPSConnection):
        assert guarded._new_conn is not HTTPConnection._new_conn
    connection = HTTPConnection("example.invalid", 80)
    assert connection._dns_host == "example.invalid"
