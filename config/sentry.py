"""Errors to Sentry, when SENTRY_DSN is set (config/settings.py calls ``sentry_start`` then only).

The official SDK with its Django and Celery integrations (and its default logging one: every
ERROR log line becomes an event, so a failed run and a job-failure alert reach Sentry even while
the mail server is down). What leaves is what the rest of Cronhouse lets out:

* no personal data: ``data_collection`` with ``user_info`` off (no user, no client address), no
  cookies, no request bodies, no database query parameters and no frame local variables (a local
  may hold a credential no pattern knows). ``data_collection`` is sentry-sdk's documented
  successor of ``send_default_pii=False`` (deprecated in the pinned release, and ignored when
  ``data_collection`` is given), and says each category explicitly;
* no trace headers on outgoing HTTP (``trace_propagation_targets=[]``): a webhook receiver or
  a processor sees only what the job sends;
* ``before_send`` runs every string of the event (message, exception values, breadcrumbs, request
  headers, contexts) through ``core.redaction.redact``, the database's stored secrets included.

The SDK sends over its own urllib3 pool, not through the outbound guard (core/http_guard.py): the
guard exists for URLs staff type into the admin, while the DSN is deployment configuration like
DATABASE_URL and EMAIL_URL, and a self-hosted Sentry on a private address must stay reachable.
"""

from __future__ import annotations

import logging

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

logger = logging.getLogger(__name__)


def _redacted(value, secrets: set[str]):
    from core.redaction import redact

    if isinstance(value, str):
        return redact(value, extra=secrets)
    if isinstance(value, dict):
        return {key: _redacted(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item, secrets) for item in value]
    return value


def _stored_secrets() -> set[str]:
    """The database's secrets; none when it cannot be read (the error may be that very outage)."""
    from core.redaction import MIN_LITERAL, stored_secrets

    try:
        return {value for value in stored_secrets() if len(value) >= MIN_LITERAL}
    except Exception:
        return set()


def event_redact(event: dict, hint: dict | None = None) -> dict:
    """``before_send``: the event with every string redacted, as log lines and run errors are."""
    return _redacted(event, _stored_secrets())


def sentry_start(*, dsn: str, environment: str, release: str | None = None) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        data_collection={
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_bodies": [],
            "database_query_data": False,
            "stack_frame_variables": False,
        },
        before_send=event_redact,
        # No sentry-trace / baggage headers on outgoing requests: webhook receivers and payment
        # processors are third parties, and a run's HTTP call must carry only what its job sends.
        trace_propagation_targets=[],
    )
