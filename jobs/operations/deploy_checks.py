"""Deployment checks of how the web process is served (`manage.py check --deploy`): static files
collected for the production storage, and HTTPS behind a proxy."""

from __future__ import annotations

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core import checks


def check_static_files_collected(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Production's storage names files from the manifest collectstatic writes: without it every
    admin page fails (W010)."""
    if not isinstance(staticfiles_storage, ManifestFilesMixin) or staticfiles_storage.read_manifest() is not None:
        return []
    return [
        checks.Warning(
            f"No static files manifest in STATIC_ROOT ({settings.STATIC_ROOT}): every admin page will fail.",
            hint="Run manage.py collectstatic --noinput on each web host at every deployment (docs/operations.md).",
            id="jobs.W010",
        )
    ]


def check_https_behind_proxy(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Behind a proxy that terminates TLS, the SSL redirect needs the proxy's header (W011)."""
    if not (settings.SECURE_SSL_REDIRECT and settings.TRUSTED_PROXY_HOPS and not settings.SECURE_PROXY_SSL_HEADER):
        return []
    return [
        checks.Warning(
            "SECURE_SSL_REDIRECT is on behind a proxy (TRUSTED_PROXY_HOPS) but SECURE_PROXY_SSL_HEADER is not "
            "set: if the proxy talks plain HTTP to gunicorn, every request is redirected to itself.",
            hint="Set SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https when the proxy sets that header itself.",
            id="jobs.W011",
        )
    ]
