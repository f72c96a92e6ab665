"""Cronhouse's URLs plus the baseline of bench/api_trigger.py.

``/bench/send-task`` is what a Celery user writes to let an external scheduler start a task
over HTTP: the same bearer check and rate limit as ``POST /api/jobs/run`` (the same public
functions of ``jobs.permissions.guards``), the JSON body parsed, Celery's ``send_task``, 202. It keeps
no record: an answer promises only that a message reached the broker.
"""

from __future__ import annotations

import json

from celery import current_app
from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from jobs.permissions.api_keys import api_key_authenticate
from jobs.permissions.guards import error, rate_limited

BASELINE_TASK = "bench.noop"


@csrf_exempt
@require_POST
def send_task_view(request):
    if limited := rate_limited(request):
        return limited
    presented = api_key_authenticate(request.META.get("HTTP_AUTHORIZATION", ""))
    if presented.holder is None or presented.refused:
        return error(401, "missing or wrong bearer token")
    try:
        body = json.loads(request.body)
    except ValueError:
        return error(400, "the body is not valid JSON")
    job = body.get("job") if isinstance(body, dict) else None
    if not isinstance(job, str) or not job:
        return error(400, '"job" must be a job name')
    result = current_app.send_task(BASELINE_TASK, args=[job])
    return JsonResponse({"task_id": result.id, "job": job}, status=202)


urlpatterns = [
    path("bench/send-task", send_task_view),
    path("", include("config.urls")),
]
