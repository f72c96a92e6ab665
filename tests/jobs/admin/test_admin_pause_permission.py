"""The job form's "active (not paused)" box follows the pause permission, as the actions do."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

pytestmark = pytest.mark.django_db


def _editor(django_user_model, *, may_pause: bool):
    user = django_user_model.objects.create_user("editor", password="x", is_staff=True)
    codenames = ["view_job", "view_jobrun", "change_job"] + (["toggle_job"] if may_pause else [])
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="jobs", codename__in=codenames))
    return user


def _form_data(page) -> dict:
    """What the browser would post back for the change page as shown."""
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, (list, tuple)):
            data[name] = [str(item) for item in value]
        elif value is not None:
            data[name] = form.fields[name].widget.format_value(value) or ""
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value() or 0
    return data


@pytest.mark.parametrize("may_pause", [False, True])
def test_it_pauses_through_the_job_form_only_with_the_pause_permission(client, django_user_model, make_job, may_pause):
    job = make_job("nightly-report", cron_expression="0 2 * * *")
    client.force_login(_editor(django_user_model, may_pause=may_pause))
    url = f"/admin/jobs/job/{job.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert ('name="enabled"' in page.content.decode()) == may_pause

    data = _form_data(page)
    data.pop("enabled", None)  # the box left unticked: "pause it"
    data["description"] = "edited by the form"
    answer = client.post(url, data)
    assert answer.status_code == 302, answer.context["adminform"].form.errors if answer.context else answer

    job.refresh_from_db()
    assert job.description == "edited by the form"
    assert job.enabled is (not may_pause)
