"""Log lines an operator can query: one per run start and end, JSON when ``LOG_FORMAT=json``.

The runner writes ``key=value`` messages ("run started job=x run=5 attempt=1"); the end line
also carries its fields as ``extra={"run_log": {...}}``. ``JsonFormatter`` turns either into
one JSON object per line::

    {"ts": "...", "level": "INFO", "logger": "jobs.running.runner", "event": "run finished",
     "job": "generate-charges", "run_id": 5, "status": "succeeded", "duration_seconds": 1.204,
     "attempt": 1, "slow": false, "message": "run finished job=generate-charges run=5 ..."}

``RedactingFilter`` (on the console handler in both formats) masks credentials in every
message first, with ``core.redaction.redact`` (patterns and secret settings; no database
query per log line).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from core.redaction import redact

_PAIR = re.compile(r"(\w+)=(\S+)")
# The message's key names, renamed to the structured line's field names.
_RENAME = {"run": "run_id"}


class RedactingFilter(logging.Filter):
    """Render the message once, redacted, so no handler or formatter sees the secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is logging's problem to report, not ours
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # Formatters print exc_text when it is set: the traceback, redacted once here.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def _value(text: str):
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+s?", text):
        return float(text.rstrip("s"))
    return text


def message_fields(message: str) -> dict:
    """``"run started job=x run=5"`` -> ``{"event": "run started", "job": "x", "run_id": 5}``."""
    first = _PAIR.search(message)
    if first is None:
        return {}
    fields = {"event": message[: first.start()].strip()}
    for key, value in _PAIR.findall(message):
        fields[_RENAME.get(key, key)] = _value(value)
    if fields["event"] == "run started":
        fields.setdefault("status", "running")
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        data = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        structured = getattr(record, "run_log", None)
        if structured:
            data.update(structured)
        elif record.name.startswith("jobs"):
            data.update(message_fields(message))
        data["message"] = message
        if record.exc_info:
            data["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, default=str)
