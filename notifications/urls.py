from __future__ import annotations

from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("files/<str:token>/", views.attachment_download, name="attachment"),
]
