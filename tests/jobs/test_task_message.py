"""The HTTP trigger's messages filled into a per-process template and pushed to Redis: the same
message send_task sends, on the same list, run by a real worker; a refused push resends."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import redis
from celery import Celery, current_app
from django.utils import timezone

from jobs import publisher, runner
from jobs.models import JobRun
from jobs.runner import EXECUTE_TASK, run_trigger_by_key
from jobs.task_message import TaskMessages
from tests.process_group import wait_for, wait_for_log

API = JobRun.Trigger.API


def decoded(payload: bytes | str) -> tuple[dict, object]:
    """A pushed message's envelope without its delivery tag (unique per message), and its body."""
    envelope = json.loads(payload)
    del envelope["properties"]["delivery_tag"]
    return envelope, json.loads(base64.b64decode(envelope.pop("body")))


def pushed(client: redis.Redis, key: str = "celery") -> list[bytes]:
    """The messages on ``key``, in the order a worker takes them."""
    return client.lrange(key, 0, -1)[::-1]


@pytest.fixture
def broker(redis_broker):
    return redis.Redis.from_url(redis_broker)


@pytest.mark.redis
@pytest.mark.parametrize(
    "limits",
    [{"soft_time_limit": 30, "time_limit": 180.0}, {"soft_time_limit": None, "time_limit": None}],
    ids=["limits", "no-limits"],
)
def test_it_renders_the_message_send_task_pushes(broker, limits):
    messages = TaskMessages.for_app(current_app, EXECUTE_TASK)
    task_id = str(uuid.uuid4())
    rendered = messages.render(4242, task_id=task_id, countdown=None, **limits)
    current_app.send_task(EXECUTE_TASK, args=[4242], task_id=task_id, countdown=None, **limits)
    [sent] = pushed(broker)
    (envelope, body), (sent_envelope, sent_body) = decoded(rendered), decoded(sent)
    assert envelope.keys() == sent_envelope.keys()
    for part in ("headers", "properties"):
        assert envelope[part].keys() == sent_envelope[part].keys()
        for field, value in sent_envelope[part].items():
            assert envelope[part][field] == value, f"{part}.{field}"
    assert {k: v for k, v in envelope.items() if k not in ("headers", "properties")} == {
        k: v for k, v in sent_envelope.items() if k not in ("headers", "properties")
    }
    assert body == sent_body == [[4242], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    assert envelope["headers"]["timelimit"] == [limits["time_limit"], limits["soft_time_limit"]]


@pytest.mark.redis
def test_it_names_a_fresh_task_id_and_delivery_tag_for_each_message(broker):
    messages = TaskMessages.for_app(current_app, EXECUTE_TASK)
    first, second = (json.loads(messages.render(7)) for _ in range(2))
    for message in (first, second):
        task_id = message["headers"]["id"]
        assert (
            uuid.UUID(task_id) and message["headers"]["root_id"] == message["properties"]["correlation_id"] == task_id
        )
    assert first["headers"]["id"] != second["headers"]["id"]
    assert first["properties"]["delivery_tag"] != second["properties"]["delivery_tag"]


@pytest.mark.redis
def test_it_pushes_to_the_list_kombu_uses_with_key_prefix_and_priority(broker, redis_broker):
    app = Celery("prefixed", broker=redis_broker, set_as_current=False)
    app.conf.broker_transport_options = {"global_keyprefix": "cronhouse-test:"}
    app.conf.task_routes = {EXECUTE_TASK: {"priority": 5}}
    messages = TaskMessages.for_app(app, EXECUTE_TASK)
    messages.push([messages.render(1, task_id="t-1"), messages.render(2, task_id="t-2")])
    app.send_task(EXECUTE_TASK, args=[3], task_id="t-3")
    key = "cronhouse-test:celery\x06\x163"  # kombu's list for priorities 3-5 of queue "celery"
    assert [decoded(message)[0]["headers"]["id"] for message in pushed(broker, key)] == ["t-1", "t-2", "t-3"]


def test_it_leaves_other_brokers_to_send_task(monkeypatch):
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # Celery would prefer it to the app's
    for url in ("memory://", "filesystem://"):
        assert TaskMessages.for_app(Celery("other", broker=url, set_as_current=False), EXECUTE_TASK) is None


@pytest.mark.parametrize(
    ("run_id", "options", "renders"),
    [
        (1, {"task_id": "t", "countdown": None, "soft_time_limit": 30, "time_limit": 45.0}, True),
        (1, {}, True),
        (1, {"countdown": 5}, False),
        (1, {"priority": 9}, False),
        (1, {"soft_time_limit": "30"}, False),
        ("1", {}, False),
        (True, {}, False),
    ],
)
def test_it_renders_only_what_the_template_can_say(run_id, options, renders):
    assert TaskMessages.can_render(run_id, options) is renders


# --- through the background publisher ------------------------------------------------------------


@pytest.fixture
def background(monkeypatch):
    """A fresh publisher in place of the process's."""
    fresh = publisher.Publisher(EXECUTE_TASK)
    monkeypatch.setattr(runner, "_background_publisher", fresh)
    yield fresh
    fresh.stop()


@pytest.fixture
def pushes(monkeypatch):
    """The task ids of each batch the template path pushed."""
    batches = []
    push = TaskMessages.push

    def recording_push(messages, rendered):
        batches.append([decoded(message)[0]["headers"]["id"] for message in rendered])
        push(messages, rendered)

    monkeypatch.setattr(TaskMessages, "push", recording_push)
    return batches


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.processes
def test_it_has_a_real_worker_run_a_pushed_message(processes, broker, background, pushes, make_job):
    processes.worker("worker")
    wait_for_log(processes, "worker", " ready.", timeout=60)
    make_job("nightly", timeout_seconds=60)
    run = run_trigger_by_key(name="nightly", triggered_by=API).run  # submits on commit
    background.stop()
    assert pushes == [[run.celery_task_id]]
    finished = wait_for(
        lambda: JobRun.objects.filter(pk=run.pk, finished_at__isnull=False).first(),
        timeout=60,
        message="the worker to finish the run",
    )
    assert finished.status == JobRun.Status.SUCCEEDED


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_it_sends_a_message_the_template_cannot_say_with_send_task(broker, background, pushes, make_job):
    now = timezone.now()
    plain, delayed = (JobRun.objects.create(job=make_job(name), triggered_by=API, dispatched_at=now) for name in "ab")
    background.submit(plain.pk, task_id="plain", soft_time_limit=30)
    background.submit(delayed.pk, task_id="delayed", countdown=60)
    background.stop()
    sent = {envelope["headers"]["id"]: (envelope, body) for envelope, body in map(decoded, pushed(broker))}
    assert sent.keys() == {"plain", "delayed"}
    assert sent["plain"][1][0] == [plain.pk] and sent["plain"][0]["headers"]["eta"] is None
    assert sent["delayed"][1][0] == [delayed.pk] and sent["delayed"][0]["headers"]["eta"] is not None
    assert pushes == [["plain"]]


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_it_leaves_every_run_of_a_refused_push_for_process_jobs(broker, background, make_job, monkeypatch):
    def refuse(messages, rendered):
        raise redis.ConnectionError("broker down")

    monkeypatch.setattr(TaskMessages, "push", refuse)
    now = timezone.now()
    runs = [JobRun.objects.create(job=make_job(f"job-{n}"), triggered_by=API, dispatched_at=now) for n in range(3)]
    for run in runs:
        background.submit(run.pk, task_id=f"t{run.pk}", soft_time_limit=30, time_limit=45.0)
    background.stop()
    assert (
        list(JobRun.objects.filter(pk__in=[run.pk for run in runs]).values_list("status", "dispatched_at"))
        == [(JobRun.Status.QUEUED, None)] * 3
    )
    assert pushed(broker) == []
