"""Deployment settings: production as configured from the environment passes `check --deploy`,
serves the admin's static files from gunicorn's WSGI app and insists on HTTPS; every page carries
a Content-Security-Policy whose nonce is the one on the page's own scripts."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings

pytestmark = pytest.mark.django_db

HOST = "ops.example.com"

# Through the WSGI application gunicorn serves (config.wsgi), as a browser would ask.
FETCH = """
import re, sys
from django.test import Client
from config.wsgi import application  # noqa: F401  (WhiteNoise and the middleware, as gunicorn loads them)
client = Client(HTTP_HOST="ops.example.com")
plain = client.get("/admin/login/")
print("PLAIN", plain.status_code, plain.get("Location"))
page = client.get("/admin/login/", headers={"X-Forwarded-Proto": "https"})
print("PAGE", page.status_code, page.get("Strict-Transport-Security"))
css = re.search(rb'href="(/static/admin/css/base[^"]*)"', page.content).group(1).decode()
sheet = client.get(css, headers={"X-Forwarded-Proto": "https"})
print("CSS", "|".join([css, str(sheet.status_code), sheet["Content-Type"], sheet["Cache-Control"]]))
"""


def production_env(tmp_path, **overrides: str) -> dict[str, str]:
    """A production deployment configured only through the environment, on its own var folder."""
    # Not a deployment's: the browser suites set DJANGO_ALLOW_ASYNC_UNSAFE for Playwright in this process.
    skipped = ("DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if k not in skipped}
    env.pop("JOBS_SECRET_KEY", None)
    env.update(
        CRONHOUSE_MODE="production",
        CRONHOUSE_VAR_DIR=str(tmp_path),
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS=HOST,
        JOBS_SECRETS_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        JOBS_ALERT_RECIPIENTS="ops@example.com",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        TRUSTED_PROXY_HOPS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, *argv], cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.nodb
def test_it_passes_check_deploy_with_production_settings_from_the_environment(tmp_path):
    env = production_env(tmp_path)
    before = run(env, "manage.py", "check", "--deploy")
    assert "jobs.W010" in before.stderr  # static files not collected yet: every admin page would fail
    run(env, "manage.py", "collectstatic", "--noinput")
    after = run(env, "manage.py", "check", "--deploy")
    assert "System check identified no issues" in after.stdout, after.stderr


SETTINGS = """
import django
django.setup()
from django.conf import settings as s
print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,
      s.SECURE_PROXY_SSL_HEADER, s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME, s.AXES_LOCKOUT_PARAMETERS)
"""


@pytest.mark.nodb
def test_it_keeps_the_safe_production_defaults_when_the_example_env_leaves_them_empty(tmp_path):
    names = ["SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"]
    names += ["SECURE_PROXY_SSL_HEADER", "SECURE_REDIRECT_EXEMPT", "LOGIN_FAILURE_LIMIT", "LOGIN_COOLOFF_MINUTES"]
    env = production_env(tmp_path, **dict.fromkeys(names, ""), LOGIN_LOCKOUT_BY="")
    printed = run(env, "-c", SETTINGS).stdout.strip()
    assert printed == "True 31536000 True True None 5 0:15:00 ['username', 'ip_address']"


@pytest.mark.nodb
def test_it_serves_the_admin_styles_from_the_wsgi_app_over_https_only_in_production(tmp_path):
    env = production_env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings")
    run(env, "manage.py", "collectstatic", "--noinput")
    lines = dict(
        line.split(" ", 1) for line in run(env, "-c", "import django; django.setup()\n" + FETCH).stdout.splitlines()
    )
    assert lines["PLAIN"] == f"301 https://{HOST}/admin/login/"
    assert lines["PAGE"] == "200 max-age=31536000; includeSubDomains; preload"
    path, status, content_type, cache = lines["CSS"].split("|")
    # A content-hashed name, cached for good: a new release changes the name, not the cache.
    assert re.fullmatch(r"/static/admin/css/base\.[0-9a-f]{12}\.css", path)
    assert status == "200" and content_type.startswith("text/css")
    assert "immutable" in cache


def test_it_serves_the_admin_styles_without_collectstatic_in_development(client):
    assert not django_settings.DEBUG
    sheet = client.get("/static/admin/css/base.css")
    assert sheet.status_code == 200 and sheet["Content-Type"].startswith("text/css")
    assert b"--body-fg" in b"".join(sheet.streaming_content)


def nonce_of(response) -> str:
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    script_src = re.search(r"script-src ([^;]*)", policy).group(1).split()
    assert script_src[0] == "'self'" and "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    # The nonce is in the header only when the page used it.
    return script_src[1].removeprefix("'nonce-").removesuffix("'") if len(script_src) > 1 else ""


def inline_scripts_without(nonce: str, html: str) -> list[str]:
    """Inline scripts the policy would block, and event-handler attributes (never allowed)."""
    # JSON data blocks (json_script) are never run, so the policy leaves them alone.
    scripts = [tag for tag in re.findall(r"<script\b[^>]*>", html) if 'type="application/json"' not in tag]
    blocked = [tag for tag in scripts if "src=" not in tag and f'nonce="{nonce}"' not in tag]
    return blocked + re.findall(r"<[^>]+\son[a-z]+=", html)


def test_it_lets_only_the_dashboards_own_scripts_run(staff_client, make_job):
    job = make_job("nightly")
    for url in ("/dashboard/", f"/dashboard/jobs/{job.name}/", "/dashboard/schedule/"):
        page = staff_client.get(url)
        nonce = nonce_of(page)
        html = page.content.decode()
        assert f'<script nonce="{nonce}">' in html
        assert inline_scripts_without(nonce, html) == [], url


def test_it_sends_the_policy_on_admin_pages_too(staff_client):
    urls = ("/admin/", "/admin/jobs/job/", "/admin/django_celery_beat/periodictask/add/", "/admin/login/")
    for url in urls:
        page = staff_client.get(url)
        assert page.status_code in (200, 302), url
        nonce = nonce_of(page)
        assert inline_scripts_without(nonce, page.content.decode()) == [], url
