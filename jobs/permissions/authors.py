"""Who a request changes jobs as: the versions it records (``jobs.models.versions``) name the
signed-in user and the surface (admin, dashboard, api). The API's guard names a bearer key
instead (``jobs.permissions.guards``)."""

from __future__ import annotations

from jobs.models.versions import changes_by

SURFACES = (("/admin/", "admin"), ("/dashboard/", "dashboard"), ("/api/", "api"))


def surface_of(path: str) -> str:
    return next((name for prefix, name in SURFACES if path.startswith(prefix)), "web")


def change_author_middleware(get_response):
    """After AuthenticationMiddleware. The user is read only when a version is recorded."""

    def middleware(request):
        with changes_by(lambda: getattr(request, "user", None), surface_of(request.path)):
            return get_response(request)

    return middleware
