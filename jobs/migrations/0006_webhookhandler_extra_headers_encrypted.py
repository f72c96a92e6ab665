"""Extra-header values become Fernet tokens, like the handler's secret (people put tokens in
headers). Values already stored in clear are encrypted here, which needs
JOBS_SECRETS_ENCRYPTION_KEY only when some handler has extra headers."""

from django.db import migrations, models


def encrypt_values(apps, schema_editor):
    from core.crypto import SecretUnavailable, secret_decrypt, secret_encrypt

    WebhookHandler = apps.get_model("jobs", "WebhookHandler")
    for handler in WebhookHandler.objects.all():
        if not handler.extra_headers:
            continue
        headers = {}
        for name, value in (handler.extra_headers or {}).items():
            try:
                secret_decrypt(str(value))  # already a token (a re-run): keep it
                headers[name] = value
            except SecretUnavailable:
                headers[name] = secret_encrypt(str(value))
        WebhookHandler.objects.filter(pk=handler.pk).update(extra_headers=headers)


def decrypt_values(apps, schema_editor):
    from core.crypto import headers_decrypt

    WebhookHandler = apps.get_model("jobs", "WebhookHandler")
    for handler in WebhookHandler.objects.all():
        if handler.extra_headers:
            decrypted = headers_decrypt(handler.extra_headers)
            WebhookHandler.objects.filter(pk=handler.pk).update(extra_headers=decrypted)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0005_jobrun_fewer_indexes")]

    operations = [
        migrations.AlterField(
            model_name="webhookhandler",
            name="extra_headers",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Header names and values sent with every call; values are write-only.",
            ),
        ),
        migrations.RunPython(encrypt_values, decrypt_values),
    ]
