"""Which settings the redactor treats as secrets: every rotated key in a list, and no setting
that merely names a form field (django-axes' ``password``)."""

from __future__ import annotations

from core.redaction import redact


def test_it_masks_every_key_of_a_rotation_list(settings):
    settings.SECRET_KEY_FALLBACKS = ["old-signing-key-0123456789"]
    settings.JOBS_SECRETS_ENCRYPTION_KEY = ["fernet-key-current-abcdef", "fernet-key-previous-abcdef"]

    text = redact("signed with old-signing-key-0123456789, sealed with fernet-key-previous-abcdef")

    assert "old-signing-key" not in text and "fernet-key-previous" not in text


def test_it_leaves_the_word_password_alone():
    assert redact("SMTP server said no (password=hunter2)").startswith("SMTP server said no (password=")
