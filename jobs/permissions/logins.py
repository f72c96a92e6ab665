"""Login throttling (django-axes) as Cronhouse uses it, and the audit of failed logins.

django-axes counts every failed ``authenticate(request, ...)``: the admin login (the dashboard's
login too) and the dashboard's password re-entry before destructive actions. Past
``AXES_FAILURE_LIMIT`` failures a login is refused, even with the right password, for the cool-off
(config/settings.py, "Logins"). This module gives axes the client address the rest of Cronhouse
uses, renders the lockout page, and writes one audit entry per failed login: the username tried,
the address and whether the login was locked out, never the password.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.ratelimit import client_address
from jobs.permissions.audit import audit_login_failed

LOCKOUT_STATUS = 429


def login_client_address(request: HttpRequest) -> str | None:
    """The address axes counts (AXES_CLIENT_IP_CALLABLE): the API rate limit's, or None when the
    request has none (axes stores addresses in an IP column, which takes no placeholder)."""
    address = client_address(request)
    return None if address == "unknown" else address


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """The page a locked-out login gets (AXES_LOCKOUT_CALLABLE), in the admin's own frame."""
    context = {
        **admin.site.each_context(request),
        "title": "Login paused: too many failed attempts",
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": round(settings.AXES_COOLOFF_TIME.total_seconds() / 60),
    }
    return render(request, "admin/login_locked_out.html", context, status=LOCKOUT_STATUS)


def login_failed(sender, credentials: dict, request: HttpRequest | None = None, **kwargs) -> None:
    """Receiver of Django's ``user_login_failed``, connected in JobsConfig.ready() after axes' own
    receiver (the axes app comes first in INSTALLED_APPS), so ``request.axes_locked_out`` already
    says whether this failure was refused for a lockout or crossed the limit."""
    if request is None:
        return  # authenticate() from a shell: no address to attribute, and axes refuses it anyway
    user = getattr(request, "user", None)
    audit_login_failed(
        username=str(credentials.get(get_user_model().USERNAME_FIELD) or ""),
        address=login_client_address(request) or "",
        locked_out=bool(getattr(request, "axes_locked_out", False)),
        path=request.path,
        actor=user if user is not None and user.is_authenticated else None,
    )
