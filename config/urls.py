from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    # Signed, expiring downloads of e-mail attachments too large to attach.
    path("notifications/", include("notifications.urls")),
    # The embedded demo's stand-ins for Stripe and the API providers (404 outside that demo).
    path("demo/", include("accounts.urls")),
    # Staff dashboard (/dashboard/) and the HTTP trigger API (/api/jobs/run, /api/jobs/status).
    path("", include("jobs.urls")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
