"""Cronhouse's URLs plus ``/bench/trivial``: the throughput reference of bench/api_trigger.py."""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import include, path


def trivial(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/trivial", trivial), path("", include("config.urls"))]
