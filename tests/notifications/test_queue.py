"""The e-mail queue: enqueue inside the caller's transaction, render, send, back off, die, retry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.email import mailer
from notifications.email.mailer import notifications_process
from notifications.email.rendering import UnknownTemplate
from notifications.models import Notification, NotificationKey
from notifications.services import (
    notification_enqueue,
    notifications_cancel,
    notifications_enqueue_many,
    notifications_retry,
)

pytestmark = pytest.mark.django_db
Status = Notification.Status
TEMPLATE = "notifications/test_message"


def enqueue(**overrides):
    values = {"recipient": "tenant@example.com", "template": TEMPLATE, "context": {"label": "hello"}}
    values.update(overrides)
    return notification_enqueue(**values)


def test_it_enqueues_nothing_when_the_callers_transaction_rolls_back(outbox):
    class CallerFailed(Exception):
        pass

    with pytest.raises(CallerFailed), transaction.atomic():
        enqueue(dedupe_key="rolled-back-1")
        notifications_enqueue_many(messages=[{"recipient": "b@example.com", "template": TEMPLATE, "context": {}}])
        raise CallerFailed

    assert Notification.objects.count() == 0
    notifications_process()
    assert outbox == []
    # The key is free again: the rolled-back message never existed.
    assert enqueue(dedupe_key="rolled-back-1") is not None


def test_it_sends_nothing_before_the_callers_transaction_commits(outbox):
    with transaction.atomic():
        enqueue()
        # Another process would not see the row; in this connection the drain would, so the
        # guarantee is that enqueue itself sends nothing.
        assert outbox == []
    assert Notification.objects.get().status == Status.QUEUED


def test_it_enqueues_one_message_for_a_repeated_dedupe_key(outbox):
    first = enqueue(dedupe_key="rent-reminder:lease-7:2026-12")
    assert first is not None
    assert enqueue(dedupe_key="rent-reminder:lease-7:2026-12") is None

    message = {
        "recipient": "t@example.com",
        "template": TEMPLATE,
        "context": {},
        "dedupe_key": "rent-reminder:lease-7:2026-12",
    }
    assert notifications_enqueue_many(messages=[message, dict(message)]) == 0

    assert Notification.objects.count() == 1
    notifications_process()
    assert len(outbox) == 1


def test_it_counts_only_the_new_messages_of_a_batch():
    enqueue(dedupe_key="k-1")
    messages = [
        {"recipient": f"r{i}@example.com", "template": TEMPLATE, "context": {"i": i}, "dedupe_key": f"k-{i}"}
        for i in range(5)
    ] + [{"recipient": "nokey@example.com", "template": TEMPLATE, "context": {}}] * 2
    assert notifications_enqueue_many(messages=messages) == 4 + 2
    assert Notification.objects.count() == 7


def test_it_keeps_the_first_of_a_key_repeated_within_one_batch_and_frees_a_key_with_its_message():
    messages = [
        {"recipient": f"r{i}@example.com", "template": TEMPLATE, "context": {"i": i}, "dedupe_key": "same"}
        for i in range(3)
    ]
    assert notifications_enqueue_many(messages=messages) == 1
    (kept,) = Notification.objects.filter(dedupe_key="same")
    assert kept.recipient == "r0@example.com"
    assert kept.dedupe.key == "same"

    # Deleting a message (purge-logs, admin) deletes its key: the key can be queued again.
    kept.delete()
    assert NotificationKey.objects.count() == 0
    assert enqueue(dedupe_key="same") is not None


def test_it_refuses_a_second_message_with_the_same_key_in_the_database():
    first = enqueue(dedupe_key="db-level")
    second = Notification.objects.create(
        recipient="x@example.com", template=TEMPLATE, dedupe_key="db-level", send_after=timezone.now()
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationKey.objects.create(key="db-level", notification=second)
    assert NotificationKey.objects.get(key="db-level").notification == first


def test_it_enqueues_a_batch_in_a_number_of_queries_that_does_not_grow_per_message():
    """Per 1,000 messages: the INSERTs the backend needs for the messages and for their keys
    (one each on PostgreSQL) and one SELECT of the keys that went in."""
    import math

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.models import NotificationKey

    def messages(n, prefix):
        return [
            {"recipient": f"r{i}@example.com", "template": TEMPLATE, "context": {"i": i}, "dedupe_key": f"{prefix}{i}"}
            for i in range(n)
        ]

    def inserts_per_thousand(model):
        fields = [f for f in model._meta.concrete_fields if not f.primary_key or model is NotificationKey]
        return math.ceil(1000 / min(connection.ops.bulk_batch_size(fields, [None] * 1000), 1000))

    per_chunk = inserts_per_thousand(Notification) + inserts_per_thousand(NotificationKey)
    for n in (10, 2500):
        with CaptureQueriesContext(connection) as queries:
            assert notifications_enqueue_many(messages=messages(n, f"n{n}-")) == n
        chunks = math.ceil(n / 1000)
        inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
        others = [q for q in queries.captured_queries if not q["sql"].startswith("INSERT")]
        assert len(inserts) <= chunks * per_chunk
        assert len(others) <= chunks + 2  # one SELECT per chunk, plus the savepoint pair
    if connection.vendor == "postgresql":
        assert len(inserts) == 6


def test_it_refuses_an_unknown_template_or_a_bad_address_at_enqueue():
    with pytest.raises(UnknownTemplate, match="billing/no_such_message"):
        enqueue(template="billing/no_such_message")
    with pytest.raises(UnknownTemplate, match="Bad template name"):
        enqueue(template="../secrets")
    with pytest.raises(ValueError, match="Not an e-mail address"):
        enqueue(recipient="not-an-address")
    with pytest.raises(ValueError, match="Unknown message keys"):
        notifications_enqueue_many(
            messages=[{"recipient": "a@example.com", "template": TEMPLATE, "context": {}, "x": 1}]
        )
    assert Notification.objects.count() == 0


def test_it_renders_subject_text_and_html_with_links_from_the_site_url(outbox, settings):
    settings.SITE_URL = "https://ops.example.com/"
    notification = enqueue(context={"label": 'Rent <due> & "paid"'})
    result = notifications_process()

    assert result.sent == 1
    [message] = outbox
    assert message.subject == '[Cronhouse] Test message Rent <due> & "paid"'
    assert message.to == ["tenant@example.com"]
    assert 'Rent <due> & "paid"' in message.body  # plain text is not HTML-escaped
    assert "https://ops.example.com/admin/" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "Rent &lt;due&gt; &amp;" in html
    assert message.extra_headers["Message-ID"] == f"<{notification.uuid}@{settings.NOTIFICATIONS_MESSAGE_ID_DOMAIN}>"
    notification.refresh_from_db()
    assert notification.status == Status.SENT and notification.sent_at is not None and notification.attempts == 1


@pytest.fixture
def email_templates(tmp_path, settings):
    """Writes e-mail templates into a folder the ``emails`` engine reads first."""

    def write(name: str, **parts: str) -> str:
        folder = tmp_path / "emails" / name
        folder.mkdir(parents=True)
        for part, source in parts.items():
            (folder / part.replace("_", ".")).write_text(source)
        return name

    settings.TEMPLATES = [
        {**engine, "DIRS": [tmp_path, *engine["DIRS"]]} if engine.get("NAME") == "emails" else engine
        for engine in settings.TEMPLATES
    ]
    return write


def test_it_renders_in_the_recipients_language(outbox, email_templates):
    """Django's own catalogue translates "Yes" and "Hour", and prints 1.5 as "1,5" in French."""
    email_templates(
        "i18n_probe",
        subject_txt='{{ _("Yes") }} {{ duration }}',
        body_txt="{% trans %}Hour{% endtrans %}: {{ duration }} {% trans %}{{ duration }} h{% endtrans %}",
        body_html='{{ _("Yes") }}, {% trans %}{{ duration }} h{% endtrans %}',
    )

    for language, recipient in (("fr", "fr@example.com"), ("", "en@example.com"), ("de", "de@example.com")):
        enqueue(template="i18n_probe", language=language, recipient=recipient, context={"duration": 1.5})
    notifications_process()

    by_recipient = {m.to[0]: m for m in outbox}
    french, english = by_recipient["fr@example.com"], by_recipient["en@example.com"]
    assert (french.subject, french.body) == ("Oui 1,5", "Heure: 1,5 1,5 h")
    assert (english.subject, english.body) == ("Yes 1.5", "Hour: 1.5 1.5 h")
    assert by_recipient["de@example.com"].subject == "Ja 1,5"
    assert '<html lang="fr">' in french.alternatives[0][0] and "Oui, 1,5 h" in french.alternatives[0][0]


def test_it_escapes_context_values_in_html_but_not_in_text(outbox, email_templates):
    email_templates(
        "escape_probe",
        subject_txt="{{ name }}",
        body_txt="{{ name }} {% trans %}by {{ name }}{% endtrans %}",
        body_html="<b>{{ name }}</b> {% trans %}by {{ name }}{% endtrans %} {{ _('Yes') }}",
    )
    enqueue(template="escape_probe", context={"name": "<script>alert('x')</script> & co"})
    notifications_process()

    [message] = outbox
    raw = "<script>alert('x')</script> & co"
    assert message.subject == raw and message.body == f"{raw} by {raw}"
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"
    html = message.alternatives[0][0]
    assert f"<b>{escaped}</b> by {escaped} Yes" in html and "<script>" not in html
    assert f"<title>{escaped}</title>" in html  # the subject in the layout, escaped as well


def test_it_translates_plurals_with_trans_count(outbox, email_templates):
    plural = "{% trans count=n %}{{ n }} day{% pluralize %}{{ n }} days{% endtrans %}"
    email_templates("plural_probe", subject_txt=plural, body_txt=plural + " left", body_html=f"<p>{plural}</p>")
    enqueue(template="plural_probe", recipient="one@example.com", context={"n": 1})
    enqueue(template="plural_probe", recipient="three@example.com", context={"n": 3})
    notifications_process()

    one, three = sorted(outbox, key=lambda message: message.to != ["one@example.com"])
    assert (one.subject, one.body) == ("1 day", "1 day left")
    assert (three.subject, three.body) == ("3 days", "3 days left")
    assert "<p>3 days</p>" in three.alternatives[0][0]


def test_it_sends_no_html_part_for_a_message_without_body_html(outbox, email_templates):
    email_templates("text_only", subject_txt="Plain", body_txt="Just text & <no> markup")
    enqueue(template="text_only")
    notifications_process()

    [message] = outbox
    assert (message.subject, message.body, message.alternatives) == ("Plain", "Just text & <no> markup", [])


def test_it_fails_a_message_whose_template_no_longer_exists(outbox):
    # Stored directly: a template removed by a deploy after the message was queued.
    notification = Notification.objects.create(
        recipient="tenant@example.com", template="billing/retired_message", send_after=timezone.now()
    )
    assert notifications_process().failed == 1
    notification.refresh_from_db()
    assert notification.status == Status.RETRYING and "billing/retired_message" in notification.last_error
    assert outbox == []


def test_it_waits_until_send_after(outbox):
    later = timezone.now() + timedelta(hours=1)
    enqueue(send_after=later)
    assert notifications_process().sent == 0
    assert notifications_process(now=later + timedelta(seconds=1)).sent == 1


class FlakyBackend:
    """Fails every send while ``failing`` is true."""

    failing = True
    sent: list = []

    def __init__(self, *args, **kwargs) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send_messages(self, messages):
        if FlakyBackend.failing:
            raise ConnectionRefusedError("SMTP server said no (password=hunter2)")
        FlakyBackend.sent.extend(messages)
        return len(messages)


@pytest.fixture
def flaky_backend(monkeypatch):
    FlakyBackend.failing = True
    FlakyBackend.sent = []
    monkeypatch.setattr(mailer, "get_connection", lambda **kwargs: FlakyBackend())
    return FlakyBackend


def test_it_backs_off_1_3_9_15_minutes_then_dies_and_a_staff_retry_sends_it(flaky_backend, settings):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 5
    start = timezone.now()
    notification = enqueue(send_after=start)
    now = start
    waits = []
    for attempt in range(1, 6):
        result = notifications_process(now=now)
        assert result.failed == 1, f"attempt {attempt}"
        notification.refresh_from_db()
        assert notification.attempts == attempt
        if attempt < 5:
            assert notification.status == Status.RETRYING
            waits.append(notification.send_after - now)
            # Not a moment earlier.
            assert notifications_process(now=notification.send_after - timedelta(seconds=1)).batches == 0
            now = notification.send_after
    assert waits == [timedelta(minutes=m) for m in (1, 3, 9, 15)]
    assert notification.status == Status.DEAD
    assert "ConnectionRefusedError" in notification.last_error and "hunter2" not in notification.last_error

    # Dead stays dead, however late.
    assert notifications_process(now=now + timedelta(days=1)).batches == 0

    flaky_backend.failing = False
    assert notifications_retry(notification_ids=[notification.pk], now=now) == 1
    assert notifications_process(now=now).sent == 1
    notification.refresh_from_db()
    assert notification.status == Status.SENT and notification.attempts == 1
    assert len(flaky_backend.sent) == 1


def test_it_keeps_backing_off_15_minutes_past_the_fourth_failure(flaky_backend, settings):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 7
    now = timezone.now()
    notification = enqueue(send_after=now)
    for _ in range(6):
        notifications_process(now=now)
        notification.refresh_from_db()
        now = notification.send_after
    assert notification.attempts == 6 and notification.status == Status.RETRYING
    assert notification.send_after - notification.updated_at == timedelta(minutes=15)


def test_it_requeues_a_message_whose_sender_died_after_15_minutes(outbox, settings):
    now = timezone.now()
    notification = enqueue(send_after=now)
    token, batch = mailer.notifications_claim(now=now, limit=10)  # a drain claims it, then dies
    assert [n.pk for n in batch] == [notification.pk]

    assert notifications_process(now=now + timedelta(minutes=14)).sent == 0
    result = notifications_process(now=now + timedelta(minutes=15, seconds=1))
    assert (result.reclaimed, result.sent) == (1, 1)
    notification.refresh_from_db()
    assert notification.status == Status.SENT and notification.attempts == 2
    assert len(outbox) == 1


def test_it_ignores_a_late_result_from_a_drain_whose_batch_was_reclaimed(outbox):
    now = timezone.now()
    notification = enqueue(send_after=now)
    stale_token, _ = mailer.notifications_claim(now=now, limit=10)
    notifications_process(now=now + timedelta(minutes=16))  # reclaimed and sent by a live drain
    late = mailer.DrainResult()
    mailer._record(stale_token, [], [(notification, "late failure")], now + timedelta(minutes=17), late)
    notification.refresh_from_db()
    assert late.failed == 0 and notification.status == Status.SENT and notification.last_error == ""


def test_it_does_not_send_a_cancelled_message(outbox):
    notification = enqueue()
    assert notifications_cancel(notification_ids=[notification.pk]) == 1
    notifications_process()
    notification.refresh_from_db()
    assert notification.status == Status.CANCELLED and outbox == []


def test_it_sends_one_batch_per_claim_and_stops_when_the_queue_is_empty(outbox):
    notifications_enqueue_many(
        messages=[{"recipient": f"r{i}@example.com", "template": TEMPLATE, "context": {}} for i in range(25)]
    )
    result = notifications_process(batch_size=10)
    assert (result.sent, result.batches) == (25, 3)
    assert sorted(m.to[0] for m in outbox) == sorted(f"r{i}@example.com" for i in range(25))
    assert Notification.objects.filter(status=Status.SENT).count() == 25


def test_it_records_a_batch_as_sent_in_one_statement_whatever_its_size(outbox):
    """One UPDATE marks the whole batch sent, not one per message."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for n in (3, 60):
        notifications_enqueue_many(
            messages=[{"recipient": f"r{n}-{i}@example.com", "template": TEMPLATE, "context": {}} for i in range(n)]
        )
        with CaptureQueriesContext(connection) as queries:
            assert notifications_process(batch_size=100).sent == n
        marked = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "'sent'" in q["sql"]]
        assert len(marked) == 1
    assert Notification.objects.filter(status=Status.SENT, attempts=1).count() == 63 and len(outbox) == 63


def test_it_fails_only_the_message_that_cannot_be_rendered(outbox, email_templates):
    email_templates("broken", subject_txt="{{ 1 / count }}", body_txt="body")
    good = enqueue(recipient="good@example.com")
    bad = enqueue(template="broken", recipient="bad@example.com", context={"count": 0})

    result = notifications_process()

    assert (result.sent, result.failed) == (1, 1) and [m.to for m in outbox] == [["good@example.com"]]
    bad.refresh_from_db()
    good.refresh_from_db()
    assert good.status == Status.SENT
    assert bad.status == Status.RETRYING and "ZeroDivisionError" in bad.last_error
