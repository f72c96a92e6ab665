"""Error reports that never hold a secret: Django's DEBUG page and the error e-mails to ADMINS.

Django's own filter hides settings with secret-looking names, but shows every traceback
variable unless its function is marked ``sensitive_variables``, and only filters at all while
DEBUG is off. A view that read ``settings.JOBS_SECRET_KEY`` or an Authorization header into a
local would print it. This filter is always on, and hides a variable whose name looks secret
or whose value contains a secret (the one redactor, ``core.redaction``, decides).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from core.redaction import redact


def _secret_inside(value) -> bool:
    try:
        text = repr(value)
    except Exception:  # a broken object's repr: the report shows what Django makes of it
        return False
    return _redacted(text) != text


class SecretHidingReporterFilter(SafeExceptionReporterFilter):
    # Django's list plus URLs and cache LOCATIONs (credentials in DSNs) and credentials by name.
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|CREDENTIAL|URL|LOCATION|DSN", flags=re.I
    )

    def is_active(self, request) -> bool:
        return True

    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [
            (name, self.cleansed_substitute if self.hidden_settings.search(name) or _secret_inside(value) else value)
            for name, value in variables
        ]


class SecretHidingReporter(ExceptionReporter):
    """The exception messages (``ValueError(f"bad key {key}")``, and each chained cause) are shown
    redacted too."""

    def get_traceback_data(self) -> dict:
        data = super().get_traceback_data()
        if data.get("exception_value"):
            data["exception_value"] = _redacted(data["exception_value"])
        for frame in data.get("frames", []):
            if frame.get("exc_cause") is not None:
                frame["exc_cause"] = _redacted(frame["exc_cause"])
        return data


def _redacted(value) -> str:
    return redact(str(value), extra=settings.JOBS_SECRETS_ENCRYPTION_KEY)
