"""``{% absolute_url "admin:jobs_jobrun_change" run_id %}``: links in e-mails, built from SITE_URL."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.urls import reverse

register = template.Library()


@register.simple_tag
def absolute_url(view_name: str, *args) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(view_name, args=args)


@register.simple_tag
def site_link(path: str = "/") -> str:
    """SITE_URL + a path, for pages without a URL name."""
    return settings.SITE_URL.rstrip("/") + "/" + path.lstrip("/")
