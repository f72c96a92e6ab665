"""The webhook handlers CRUD API: the admin's form and checks, the model permissions, and the
secret and header values write-only: in no answer, audit entry or log line, in any encoding."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from django.contrib.auth.models import Permission

from core.crypto import secret_decrypt
from jobs.api.crud import handler_json
from jobs.models import AuditEntry, Job, WebhookHandler
from jobs.permissions.api_keys import api_key_create

pytestmark = pytest.mark.django_db
HANDLERS = "/api/webhook-handlers"
SECRET = "tok-9f8e7d6c5b4a-very-secret"
HEADER_VALUE = "hdr-1a2b3c4d5e6f-also-secret"


def _leaks(text: str) -> bool:
    forms = []
    for value in (SECRET, HEADER_VALUE):
        forms += [value, base64.b64encode(value.encode()).decode(), value.encode().hex(), json.dumps(value)[1:-1]]
    return any(form in text for form in forms)


def _create(rest, **fields):
    body = {
        "name": "billing-hook",
        "url": "https://hooks.example.com/run",
        "auth": "bearer",
        "secret": SECRET,
        "extra_headers": {"X-Token": HEADER_VALUE},
        **fields,
    }
    return rest("post", HANDLERS, body)


def test_it_creates_a_handler_and_never_shows_its_secret(rest, caplog):
    caplog.set_level(logging.DEBUG)
    response = _create(rest)

    assert response.status_code == 201, response.json()
    handler = WebhookHandler.objects.get()
    assert secret_decrypt(handler.secret) == SECRET
    assert secret_decrypt(handler.extra_headers["X-Token"]) == HEADER_VALUE
    shown = response.json()
    assert shown["secret_set"] is True and shown["extra_headers"] == {"X-Token": "[redacted]"}
    read = rest("get", f"{HANDLERS}/{handler.pk}")
    listed = rest("get", HANDLERS)
    audit = json.dumps(list(AuditEntry.objects.values("changes", "object_repr")))
    for text in (response.content.decode(), read.content.decode(), listed.content.decode(), audit, caplog.text):
        assert not _leaks(text)


def test_it_keeps_replaces_and_removes_the_secret_and_header_values(rest):
    handler_id = _create(rest).json()["id"]

    rest("patch", f"{HANDLERS}/{handler_id}", {"timeout_seconds": 10})
    handler = WebhookHandler.objects.get()
    assert secret_decrypt(handler.secret) == SECRET and handler.timeout_seconds == 10
    assert secret_decrypt(handler.extra_headers["X-Token"]) == HEADER_VALUE

    rest("patch", f"{HANDLERS}/{handler_id}", {"secret": "new-one", "extra_headers": {"X-Token": "[redacted]"}})
    handler.refresh_from_db()
    assert secret_decrypt(handler.secret) == "new-one"
    assert secret_decrypt(handler.extra_headers["X-Token"]) == HEADER_VALUE

    response = rest("patch", f"{HANDLERS}/{handler_id}", {"auth": "none", "secret": None, "extra_headers": {}})
    assert response.status_code == 200, response.json()
    handler.refresh_from_db()
    assert handler.secret == "" and handler.extra_headers == {}
    entry = AuditEntry.objects.filter(action="update").order_by("-id").first()
    assert entry.changes["secret"] == ["[redacted]", "[redacted]"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "http://127.0.0.1:8000/x"}, "url"),
        ({"url": "https://user:pw@hooks.example.com/x"}, "url"),
        ({"secret": None}, "secret"),  # bearer auth needs a secret
        ({"auth": "basic"}, "auth_username"),
        ({"auth": "api_key"}, "auth_header_name"),
        ({"method": "DELETE"}, "method"),
        ({"timeout_seconds": "30"}, "timeout_seconds"),
        ({"extra_headers": {"X-A": "one\r\ntwo"}}, "extra_headers"),
        ({"extra_headers": {"X-A": "[redacted]"}}, "extra_headers"),
        ({"secret": 12345}, "secret"),
    ],
)
def test_it_refuses_what_the_admin_refuses_without_repeating_the_secret(rest, fields, field):
    response = _create(rest, **fields)
    assert response.status_code == 400
    assert field in response.json()["fields"], response.json()
    assert not _leaks(response.content.decode()) and "12345" not in response.content.decode()
    assert not WebhookHandler.objects.exists()


def test_it_answers_409_to_deleting_a_handler_jobs_call(rest):
    handler_id = _create(rest).json()["id"]
    job = rest("post", "/api/jobs", {"name": "hooked", "webhook_handler": "billing-hook", "interval_seconds": 60})
    assert job.status_code == 201
    response = rest("delete", f"{HANDLERS}/{handler_id}")
    assert response.status_code == 409 and response.json()["jobs"] == 1
    Job.objects.all().delete()
    assert rest("delete", f"{HANDLERS}/{handler_id}").status_code == 204
    assert AuditEntry.objects.filter(action="delete", object_repr="billing-hook").exists()


def test_it_refuses_named_api_keys_and_staff_without_the_permission(client, rest, django_user_model):
    handler = WebhookHandler.objects.create(name="ping", url="https://hooks.example.com/ping")
    _, token = api_key_create(name="reader")
    assert rest("get", HANDLERS, token=token).status_code == 403
    assert rest("patch", f"{HANDLERS}/{handler.pk}", {"timeout_seconds": 5}, token=token).status_code == 403

    user = django_user_model.objects.create_user("clerk", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_webhookhandler"))
    client.force_login(user)
    assert rest("get", f"{HANDLERS}/{handler.pk}", token=None).status_code == 200
    refused = rest("patch", f"{HANDLERS}/{handler.pk}", {"timeout_seconds": 5}, token=None)
    assert refused.status_code == 403 and "jobs.change_webhookhandler" in refused.json()["error"]
    assert rest("delete", f"{HANDLERS}/{handler.pk}", token=None).status_code == 403
    handler.refresh_from_db()
    assert handler.timeout_seconds == 30
    refused = AuditEntry.objects.filter(object_type="webhookhandler").exclude(refused="")
    assert sorted(refused.values_list("action", flat=True)) == ["delete", "update", "update"]


def test_it_shows_a_handler_by_its_fields_only(rest):
    handler = WebhookHandler.objects.create(name="ping", url="https://hooks.example.com/ping", secret="gAAAA-token")
    assert set(handler_json(handler)) == {
        "id",
        "name",
        "url",
        "method",
        "auth",
        "auth_username",
        "auth_header_name",
        "timeout_seconds",
        "extra_headers",
        "secret_set",
        "href",
        "created_at",
        "updated_at",
    }
