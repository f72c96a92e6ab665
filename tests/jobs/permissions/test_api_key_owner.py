"""An API key made in the admin belongs to the staff user who made it: it stops working (401,
audited) once that user is deactivated or deleted. A key made with manage.py create_api_key has
no owner and works until it is revoked or expires."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from jobs.models import ApiKey, AuditEntry, JobRun

pytestmark = pytest.mark.django_db
RUN = "/api/jobs/run"


@pytest.fixture
def owned_key(client, django_user_model, make_job):
    """A key made in the admin by the superuser ``owner``; returns (owner, key, token)."""
    make_job("nightly")
    owner = django_user_model.objects.create_superuser("owner", "owner@example.com", "pw-owner-123456")
    client.force_login(owner)
    page = client.post("/admin/jobs/apikey/add/", {"name": "k8s-nightly", "jobs": []}).content.decode()
    client.logout()
    token = next(word for word in page.replace('"', " ").split() if word.startswith("chk_"))
    return owner, ApiKey.objects.get(name="k8s-nightly"), token


def test_it_refuses_a_key_once_its_owner_is_deactivated_and_audits_it(api, owned_key):
    owner, key, token = owned_key
    assert key.created_by == owner and not key.ownerless
    assert api.post(RUN, {"job": "nightly"}, token=token).status_code == 202

    owner.is_active = False
    owner.save()
    refused = api.post(RUN, {"job": "nightly"}, token=token)
    assert refused.status_code == 401
    assert refused.json()["error"] == "API key refused: key owner deactivated"
    assert api.get("/api/jobs/status", token=token).status_code == 401
    assert api.get("/metrics", token=token).status_code == 401
    assert JobRun.objects.count() == 1
    entry = AuditEntry.objects.filter(api_key=key, refused="key owner deactivated").first()
    assert entry is not None and entry.actor_label == f"API key k8s-nightly (#{key.pk})"

    owner.is_active = True  # reactivated: the key works again (409: the first run is still queued)
    owner.save()
    assert api.post(RUN, {"job": "nightly"}, token=token).status_code == 409


def test_it_refuses_a_key_whose_owner_was_deleted_and_keeps_its_row(api, owned_key, staff_client):
    owner, key, token = owned_key
    owner.delete()
    refused = api.post(RUN, {"job": "nightly"}, token=token)
    assert refused.status_code == 401
    assert refused.json()["error"] == "API key refused: key owner deleted"
    assert not JobRun.objects.exists()
    key.refresh_from_db()
    assert key.created_by is None and AuditEntry.objects.filter(api_key=key, refused="key owner deleted").exists()
    assert "key owner deleted" in staff_client.get("/admin/jobs/apikey/").content.decode()


def test_it_keeps_an_ownerless_key_from_create_api_key_working(api, make_job):
    make_job("nightly")
    out = StringIO()
    call_command("create_api_key", "system-cron", stdout=out)
    token = next(line for line in out.getvalue().splitlines() if line.startswith("chk_"))
    key = ApiKey.objects.get(name="system-cron")
    assert key.ownerless and key.created_by is None
    assert api.post(RUN, {"job": "nightly"}, token=token).status_code == 202
