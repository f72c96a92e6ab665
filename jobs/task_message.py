"""The Celery message of a one-id task, filled into a per-process template and pushed to Redis.

``send_task`` spends 0.25-0.7 ms of CPU per message in Celery's routing and kombu's message
preparation, and does the same work every time for a task whose messages differ only in task
id, argument and time limits. Here that work runs once per process:

1. Celery sends two sample messages through a channel whose ``_put`` (where kombu's Redis
   transport turns a routed message into an LPUSH) records the list key and the JSON instead.
2. The first recording is cut into format strings at the values that differ per message; the
   template must then reproduce the second recording byte for byte from its values. A Celery or
   kombu version that adds another varying field gets no template, and its messages keep going
   through ``send_task``.

A message is then two ``str.format`` calls and a batch one LPUSH, on kombu's own Redis client
(so ``global_keyprefix`` and the connection options apply). Other brokers, and routes that are
not one plain list (fanout, queues with x-expires), get no template.
"""

from __future__ import annotations

import base64
import json
import logging
from uuid import uuid4

from celery import Celery
from kombu.utils.json import dumps as kombu_dumps

logger = logging.getLogger(__name__)

# The send_task options a template fills in; a message asking for anything else (a countdown,
# another queue, a priority) goes through send_task.
RENDERED_OPTIONS = frozenset({"task_id", "countdown", "soft_time_limit", "time_limit"})
_LIMIT_TYPES = (int, float, type(None))

# Two samples whose every varying value differs, and is too unusual to occur by chance in the
# rest of a message. The task ids are fresh uuids per process.
_SAMPLES = ((9_876_543_210_123, 86_398, 86_399.5), (1, 7, 9.25))  # (run id, soft limit, hard limit)


class TaskMessages:
    """Messages of one task taking one integer id, for this process: ``render``, then ``push``."""

    def __init__(self, client, key: str, envelope: str, body: str) -> None:
        self._client = client
        self._key = key
        self._envelope = envelope
        self._body = body

    @classmethod
    def for_app(cls, app: Celery, task_name: str) -> TaskMessages | None:
        """The template of ``task_name``'s messages through ``app``'s broker, or None where
        ``send_task`` must stay. Opens the broker connection the pushes use."""
        connection = app.connection_for_write()
        if connection.transport.driver_type != "redis":
            return None
        try:
            samples = _record_samples(app, connection, task_name)
        except Exception:
            connection.release()  # the caller retries with the next batch: no connection piles up
            raise
        if samples is None:
            connection.release()
            return None
        first, second = samples
        envelope_tokens = {
            json.dumps(first["task_id"]): "{task_id}",
            json.dumps(f"[{first['run_id']}]"): "{argsrepr}",
            json.dumps([first["time_limit"], first["soft_time_limit"]]): "{timelimit}",
            json.dumps(first["delivery_tag"]): "{delivery_tag}",
            json.dumps(first["body"]): "{body}",
        }
        messages = cls(
            connection.default_channel._create_client(),
            first["key"],
            envelope=_format_string(first["payload"], envelope_tokens),
            body=_format_string(base64.b64decode(first["body"]).decode(), {str(first["run_id"]): "{run_id}"}),
        )
        rendered = messages._fill(
            second["run_id"],
            task_id=second["task_id"],
            soft_time_limit=second["soft_time_limit"],
            time_limit=second["time_limit"],
            delivery_tag=second["delivery_tag"],
        )
        if (second["key"], second["payload"]) != (first["key"], rendered):
            logger.warning("%s: its messages vary beyond the template; sending them with send_task", task_name)
            connection.release()
            return None
        return messages

    @staticmethod
    def can_render(run_id, options: dict) -> bool:
        """Whether ``render`` makes exactly the message ``send_task(args=[run_id], **options)`` would."""
        return (
            type(run_id) is int
            and options.keys() <= RENDERED_OPTIONS
            and options.get("countdown") is None
            and isinstance(options.get("soft_time_limit"), _LIMIT_TYPES)
            and isinstance(options.get("time_limit"), _LIMIT_TYPES)
        )

    def render(
        self,
        run_id: int,
        *,
        task_id: str | None = None,
        soft_time_limit: float | None = None,
        time_limit: float | None = None,
        countdown: None = None,
    ) -> str:
        """The JSON kombu would LPUSH for options that ``can_render`` accepted."""
        return self._fill(
            run_id,
            task_id=task_id or str(uuid4()),  # as send_task does without one
            soft_time_limit=soft_time_limit,
            time_limit=time_limit,
            delivery_tag=str(uuid4()),
        )

    def push(self, messages: list[str]) -> None:
        """Send rendered messages, oldest first to be consumed, in one command."""
        # One LPUSH of many values inserts them in order, as that many LPUSHes would.
        self._client.lpush(self._key, *messages)

    def _fill(self, run_id: int, *, task_id: str, soft_time_limit, time_limit, delivery_tag: str) -> str:
        body = base64.b64encode(self._body.format(run_id=run_id).encode()).decode()
        return self._envelope.format(
            task_id=json.dumps(task_id),
            argsrepr=f'"[{run_id}]"',
            timelimit=json.dumps([time_limit, soft_time_limit]),
            delivery_tag=f'"{delivery_tag}"',
            body=f'"{body}"',
        )


def _record_samples(app: Celery, connection, task_name: str) -> list[dict] | None:
    """Send the sample messages through Celery to a channel that records them instead: for
    each, the values that vary, the list key and the JSON kombu's Redis transport would LPUSH.
    None if a sample would not be exactly one LPUSH."""
    channel = connection.channel()
    recorded: list[tuple[str, dict]] = []
    channel._put = lambda queue, message, **kwargs: recorded.append((queue, message))
    producer = app.amqp.Producer(channel)
    samples = []
    try:
        for run_id, soft, hard in _SAMPLES:
            task_id = str(uuid4())
            app.send_task(
                task_name, args=[run_id], task_id=task_id, soft_time_limit=soft, time_limit=hard, producer=producer
            )
            samples.append({"run_id": run_id, "task_id": task_id, "soft_time_limit": soft, "time_limit": hard})
    finally:
        channel.close()
    if len(recorded) != len(samples):
        return None
    for sample, (queue, message) in zip(samples, recorded, strict=True):
        if channel._expires and queue in channel._expires:
            return None
        # The key and value of Channel._put's LPUSH.
        sample["key"] = channel._q_for_pri(queue, channel._get_message_priority(message, reverse=False))
        sample["payload"] = kombu_dumps(message)
        sample["body"] = message["body"]
        sample["delivery_tag"] = message["properties"]["delivery_tag"]
    return samples


def _format_string(text: str, tokens: dict[str, str]) -> str:
    """``text`` as a format string, with each token (no braces in it) replaced by its field."""
    text = text.replace("{", "{{").replace("}", "}}")
    for token, field in tokens.items():
        text = text.replace(token, field)
    return text
