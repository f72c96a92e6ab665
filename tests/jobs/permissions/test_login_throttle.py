"""Logins are throttled per account and per address (django-axes), and every failed login is in the
audit log: the admin login (the dashboard sends staff there too) and the dashboard's password
re-entry before destructive actions."""

from __future__ import annotations

import json

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client

from jobs.models import AuditEntry
from tests.jobs.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.9"
GUESS = "Guess-hunter2-Kq9"  # a wrong password that must never be stored


def log_in(client: Client, username: str, password: str, address: str = ATTACKER, next_url: str = "/admin/"):
    return client.post(
        f"{LOGIN}?next={next_url}",
        {"username": username, "password": password, "next": next_url},
        REMOTE_ADDR=address,
    )


def fail_five_times(username: str = "boss", address: str = ATTACKER) -> None:
    client = Client()
    for _ in range(5):
        log_in(client, username, GUESS, address)


def is_locked_out(response) -> bool:
    return response.status_code == 429 and "Login paused: too many failed attempts" in response.content.decode()


@pytest.fixture(autouse=True)
def quick_password_hashing(settings):
    """Dozens of password checks a test: the production hasher's cost is not what is tested here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def root(django_user_model):
    """A second superuser, who unlocks the first."""
    return django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)


def test_it_refuses_the_right_password_after_five_wrong_ones(client, superuser):
    for _ in range(4):
        wrong = log_in(client, "boss", GUESS)
        assert wrong.status_code == 200 and "Please enter the correct username and password" in wrong.content.decode()
    assert is_locked_out(log_in(client, "boss", GUESS))
    right = log_in(client, "boss", PASSWORD)
    assert is_locked_out(right)
    assert "15 minutes" in right.content.decode() and "axes_reset_username" in right.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_locks_the_account_everywhere_and_the_address_for_every_account(superuser, staff_user):
    fail_five_times("boss", ATTACKER)
    # Another user from another address is not locked.
    assert log_in(Client(), "staff", PASSWORD, ELSEWHERE).status_code == 302
    # The account is locked from every address, and the address for every account.
    assert is_locked_out(log_in(Client(), "boss", PASSWORD, ELSEWHERE))
    assert is_locked_out(log_in(Client(), "staff", PASSWORD, ATTACKER))


def test_it_lets_the_user_in_again_once_a_superuser_deletes_the_attempts_in_the_admin(superuser, root):
    fail_five_times("boss")
    admin = Client()
    admin.force_login(root)
    attempts = admin.get("/admin/axes/accessattempt/")
    assert attempts.status_code == 200 and "boss" in attempts.content.decode()
    ids = list(AccessAttempt.objects.filter(username="boss").values_list("pk", flat=True))
    admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert log_in(Client(), "boss", PASSWORD).status_code == 302


def test_it_lets_the_user_in_again_after_axes_reset_username(superuser):
    fail_five_times("boss")
    assert is_locked_out(log_in(Client(), "boss", PASSWORD))
    call_command("axes_reset_username", "boss", stdout=open("/dev/null", "w"))
    assert log_in(Client(), "boss", PASSWORD).status_code == 302


def test_it_audits_each_failed_login_with_the_username_and_address_never_the_password(superuser):
    fail_five_times("boss")
    log_in(Client(), "boss", PASSWORD)  # locked: refused, and audited as such
    entries = list(AuditEntry.objects.filter(object_type="login").order_by("id"))
    assert [(e.object_repr, e.address, e.actor_id) for e in entries] == [("boss", ATTACKER, None)] * 6
    assert [e.refused for e in entries] == ["wrong username or password"] * 4 + [
        "locked out: too many failed logins"
    ] * 2
    stored = json.dumps(list(AuditEntry.objects.values()), default=str)
    stored += json.dumps(list(AccessAttempt.objects.values()), default=str)
    assert GUESS not in stored and PASSWORD not in stored


def test_it_throttles_the_login_the_dashboard_sends_staff_to(client, superuser):
    sent_to = client.get("/dashboard/")
    assert sent_to.status_code == 302 and sent_to["Location"].startswith(f"{LOGIN}?next=/dashboard/")
    for _ in range(5):
        log_in(client, "boss", GUESS, next_url="/dashboard/")
    assert is_locked_out(log_in(client, "boss", PASSWORD, next_url="/dashboard/"))
    assert client.get("/dashboard/").status_code == 302  # still not logged in


def test_it_counts_wrong_passwords_at_the_dashboards_re_entry(staff_client, superuser):
    for _ in range(4):
        wrong = staff_client.post("/dashboard/reauthenticate/", {"password": GUESS}, REMOTE_ADDR=ATTACKER)
        assert wrong.status_code == 200 and "That is not your password." in wrong.content.decode()
    assert is_locked_out(staff_client.post("/dashboard/reauthenticate/", {"password": GUESS}, REMOTE_ADDR=ATTACKER))
    assert is_locked_out(staff_client.post("/dashboard/reauthenticate/", {"password": PASSWORD}, REMOTE_ADDR=ATTACKER))
    entry = AuditEntry.objects.filter(object_type="login").latest("id")
    assert (
        entry.actor == superuser
        and entry.object_repr == "boss"
        and entry.changes["path"][1] == "/dashboard/reauthenticate/"
    )
    # The account is locked at the login page too.
    assert is_locked_out(log_in(Client(), "boss", PASSWORD, ELSEWHERE))


def test_it_counts_the_connection_address_unless_a_proxy_is_trusted(settings, superuser, staff_user):
    """A client rotating X-Forwarded-For is still one address; behind a trusted proxy the address
    that proxy saw is the one counted and audited."""
    client = Client()
    for n in range(5):
        client.post(
            LOGIN,
            {"username": f"user{n}", "password": GUESS},
            REMOTE_ADDR=ATTACKER,
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )
    assert is_locked_out(log_in(Client(), "boss", PASSWORD, ATTACKER))
    assert set(AuditEntry.objects.values_list("address", flat=True)) == {ATTACKER}

    settings.TRUSTED_PROXY_HOPS = 1
    proxied = Client()
    proxied.post(
        LOGIN, {"username": "someone", "password": GUESS}, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=ELSEWHERE
    )
    assert AuditEntry.objects.latest("id").address == ELSEWHERE
    # The proxy's own address (the locked one) no longer counts: the client behind it logs in.
    through_proxy = proxied.post(
        LOGIN, {"username": "staff", "password": PASSWORD}, REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=ELSEWHERE
    )
    assert through_proxy.status_code == 302
