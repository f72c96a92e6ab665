"""One log line per refused request, never a traceback.

Django's ``django.request`` logger writes a warning for every 4xx answer and, for a
``PermissionDenied`` (403), ``BadRequest`` or an unreadable upload (400), attaches the
exception's traceback; ``django.security.*`` does the same for a ``SuspiciousOperation``. A
refusal is the system doing its job, so ``RefusedRequestFilter`` (on the ``django.request``
logger and the console handler; config/settings.py ``LOGGING``) turns each such record into::

    refused POST /api/jobs/run -> 403 (API key billing-cron): not allowed: ...

the method, path, status, who asked (a user name or a key's name, never the key) and the
reason: the exception's message, the API's ``error`` (``jobs.permissions.guards.authorize`` leaves it
on the request) or Django's own words; one line per request, the first. 5xx records keep their
traceback. This module imports no
model: logging is configured before the apps are loaded.
"""

from __future__ import annotations

import logging


class RefusedRequestFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        request = getattr(record, "request", None)
        if not isinstance(status, int) or not 400 <= status < 500 or request is None:
            return True
        if getattr(record, "refusal_line", False):  # the logger's filter did it; this is the handler's
            return True
        if getattr(request, "refusal_logged", False):
            # A second record of the same refusal: the API's CSRF check logs its rejection
            # (django.security.csrf), then Django logs the API's own 403 answer.
            return False
        reason = _reason(record, request)
        record.msg = "refused %s %s -> %s (%s): %s"
        record.args = (_escaped(request.method or ""), _escaped(request.path), status, _who(request), reason)
        record.exc_info = record.exc_text = record.stack_info = None
        record.refusal_line = True
        request.refusal_logged = True
        return True


def _escaped(text: str) -> str:
    # As Django escapes the path it logs: a newline in a URL must not start a forged log line.
    return str(text).encode("unicode_escape").decode("ascii")


def _reason(record: logging.LogRecord, request) -> str:
    exception = record.exc_info[1] if record.exc_info else None
    if exception is not None and str(exception):
        return _escaped(str(exception))[:300]
    if refusal := getattr(request, "refusal", ""):
        return _escaped(refusal)[:300]
    try:
        return _escaped(record.getMessage())[:300]
    except Exception:  # a broken format string is logging's problem to report, not ours
        return str(record.msg)[:300]


def _who(request) -> str:
    if caller := getattr(request, "caller", ""):
        return caller
    try:
        user = getattr(request, "user", None)
        return user.get_username() if user is not None and user.is_authenticated else "anonymous"
    except Exception:  # the session store is down: the refusal is still worth its line
        return "unknown"
