"""Who sees and does what, on every surface: a staff user with no permission, a read-only user,
a Billing operator and a superuser, against a billing job and a notification job."""

from __future__ import annotations

import pytest

from jobs.models import AuditEntry, JobRun

pytestmark = pytest.mark.django_db

BOTH = {"generate-payouts", "process-notifications"}
SEES = {"none": set(), "reader": BOTH, "billing": {"generate-payouts"}, "boss": BOTH}
RUNS = {"none": set(), "reader": set(), "billing": {"generate-payouts"}, "boss": BOTH}


def logged_in(client, roles, who):
    client.force_login(roles["users"][who])
    return client


@pytest.mark.parametrize("who", list(SEES))
def test_it_lists_only_the_jobs_each_user_may_see(client, roles, who):
    logged_in(client, roles, who)
    page = client.get("/dashboard/")
    assert page.status_code == (403 if who == "none" else 200)
    shown = {name for name in BOTH if f'data-job="{name}"' in page.content.decode()}
    assert shown == SEES[who]
    if who != "none":
        assert {row["name"] for row in client.get("/dashboard/data.json").json()["jobs"]} == SEES[who]
    assert {row["name"] for row in client.get("/api/jobs/status").json()["jobs"]} == SEES[who]


@pytest.mark.parametrize("who", list(SEES))
def test_it_shows_a_jobs_page_and_its_runs_output_only_to_who_may_see_it(client, roles, who):
    run = JobRun.objects.create(job=roles["notify"], triggered_by="manual", status="failed", output="secret-ish out")
    logged_in(client, roles, who)
    visible = "process-notifications" in SEES[who]
    assert client.get("/dashboard/jobs/process-notifications/").status_code == (
        200 if visible else 403 if who == "none" else 404
    )
    page = client.get(f"/dashboard/runs/{run.pk}/")
    assert (page.status_code == 200) == visible and ("secret-ish out" in page.content.decode()) == visible
    assert (client.get(f"/api/runs/{run.pk}").status_code == 200) == visible
    failures = client.get("/dashboard/failures/")
    assert (f"/dashboard/runs/{run.pk}/" in failures.content.decode()) == visible


@pytest.mark.parametrize("surface", ["dashboard", "session-api"])
@pytest.mark.parametrize("who", list(SEES))
def test_it_runs_only_what_each_user_may_run_and_audits_every_refusal(client, roles, who, surface):
    logged_in(client, roles, who)
    for name in sorted(BOTH):
        if surface == "dashboard":
            response = client.post(f"/dashboard/jobs/{name}/run", HTTP_ACCEPT="application/json")
        else:
            response = client.post("/api/jobs/run", {"job": name}, content_type="application/json")
        allowed = name in RUNS[who]
        assert response.status_code == (202 if allowed else 403)
        assert JobRun.objects.filter(job__name=name).exists() == allowed
        entry = AuditEntry.objects.filter(object_repr=name, action="run").get()
        assert entry.actor_label == who and entry.address == "127.0.0.1"
        assert bool(entry.refused) == (not allowed)


@pytest.mark.parametrize("who", list(SEES))
def test_it_offers_the_admins_run_now_action_only_to_who_may_run(client, roles, who):
    logged_in(client, roles, who)
    changelist = client.get("/admin/jobs/job/")
    assert changelist.status_code == (403 if who == "none" else 200)
    page = changelist.content.decode()
    assert ('value="run_now"' in page) == bool(RUNS[who])
    assert {name for name in BOTH if f">{name}</a>" in page} == SEES[who]
    ids = [roles["payouts"].pk, roles["notify"].pk]
    client.post("/admin/jobs/job/", {"action": "run_now", "_selected_action": ids})
    assert set(JobRun.objects.values_list("job__name", flat=True)) == RUNS[who]


@pytest.mark.parametrize("who", ["none", "reader", "billing"])
def test_it_refuses_enable_disable_and_schedule_actions_without_their_permission(client, roles, who):
    logged_in(client, roles, who)
    client.post("/admin/jobs/job/", {"action": "disable", "_selected_action": [roles["payouts"].pk]})
    task = roles["payouts"].periodic_task_id
    assert client.post(f"/dashboard/schedule/{task}/pause").status_code == 403
    roles["payouts"].refresh_from_db()
    assert roles["payouts"].enabled


def test_it_lets_a_toggler_disable_only_the_jobs_of_their_group_and_audits_the_rest(client, roles):
    from tests.jobs.conftest import grant

    billing = grant(roles["users"]["billing"], "jobs.toggle_job")
    client.force_login(billing)
    ids = [roles["payouts"].pk, roles["notify"].pk]
    client.post("/admin/jobs/job/", {"action": "disable", "_selected_action": ids})
    roles["payouts"].refresh_from_db(), roles["notify"].refresh_from_db()
    assert not roles["payouts"].enabled and roles["notify"].enabled
    entry = AuditEntry.objects.get(action="disable")
    assert entry.object_repr == "generate-payouts" and entry.changes == {
        "paused": [False, True],
        "reason": [None, ""],
        "until": [None, None],
    }


def test_it_shows_a_jobs_actions_on_its_dashboard_page(client, roles):
    logged_in(client, roles, "billing")
    client.post("/dashboard/jobs/generate-payouts/run")
    client.post("/dashboard/jobs/process-notifications/run")
    client.force_login(roles["users"]["boss"])
    page = client.get("/dashboard/jobs/process-notifications/").content.decode()
    assert "billing" in page and "refused: job limited to other operator groups" in page
