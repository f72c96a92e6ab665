"""System checks for the API key and the encryption key; Fernet encryption and rotation."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from core.crypto import SecretUnavailable, secret_decrypt, secret_encrypt, secret_rotate
from jobs.operations.checks import (
    check_api_key,
    check_bootstrap_api_key,
    check_client_address_setting,
    check_secrets_encryption_key,
)


@pytest.mark.parametrize("key", ["short", "change-me", "x" * 40, "change-me-please-to-something-long-enough"])
def test_it_warns_when_the_api_key_is_short_or_a_placeholder(settings, key):
    settings.JOBS_SECRET_KEY = key
    (warning,) = check_api_key(None)
    assert warning.id == "jobs.W001" and "refuses every request" in warning.msg
    assert len(key) <= 5 or key not in warning.msg  # the key itself is never echoed


def test_it_says_nothing_when_the_bootstrap_key_is_unset(settings):
    """Unset is where named API keys lead: nothing to warn about."""
    settings.JOBS_SECRET_KEY = ""
    assert check_api_key(None) == [] and check_bootstrap_api_key(None) == []


def test_it_shows_bootstrap_key_warnings_in_check_deploy_not_before_every_command(settings, db):
    settings.JOBS_SECRET_KEY = "short"
    before_a_command, deploy_check = io.StringIO(), io.StringIO()
    call_command("jobs", skip_checks=False, stdout=io.StringIO(), stderr=before_a_command)
    call_command("check", deploy=True, tags=["security"], stdout=deploy_check, stderr=deploy_check)
    assert "jobs.W001" not in before_a_command.getvalue()
    assert "jobs.W001" in deploy_check.getvalue()


def test_it_accepts_a_long_random_api_key(settings):
    settings.JOBS_SECRET_KEY = "Zq7pL0v9xW2mR4tY6uI8oP1aS3dF5gH7jK9l"
    assert check_api_key(None) == []


def test_it_warns_about_a_missing_or_broken_encryption_key(settings):
    settings.JOBS_SECRETS_ENCRYPTION_KEY = []
    assert [w.id for w in check_secrets_encryption_key(None)] == ["jobs.W002"]
    settings.JOBS_SECRETS_ENCRYPTION_KEY = ["not-a-fernet-key"]
    (warning,) = check_secrets_encryption_key(None)
    assert "not-a-fernet-key" not in warning.msg
    with pytest.raises(ImproperlyConfigured):
        secret_encrypt("x")


def test_it_encrypts_with_the_newest_key_and_decrypts_with_any(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.JOBS_SECRETS_ENCRYPTION_KEY = [old]
    stored = secret_encrypt("hunter2")
    assert "hunter2" not in stored and secret_decrypt(stored) == "hunter2"
    settings.JOBS_SECRETS_ENCRYPTION_KEY = [new, old]
    assert secret_decrypt(stored) == "hunter2"
    rotated = secret_rotate(stored)
    settings.JOBS_SECRETS_ENCRYPTION_KEY = [new]
    assert secret_decrypt(rotated) == "hunter2"
    with pytest.raises(SecretUnavailable) as caught:
        secret_decrypt(stored)
    assert stored not in str(caught.value)
    assert secret_encrypt("") == "" and secret_decrypt("") == ""


def test_it_warns_that_ratelimit_ip_meta_key_is_no_longer_read(settings):
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"
    (warning,) = check_client_address_setting(None)
    assert warning.id == "jobs.W003" and "TRUSTED_PROXY_HOPS" in warning.hint
    settings.RATELIMIT_IP_META_KEY = None
    assert check_client_address_setting(None) == []
