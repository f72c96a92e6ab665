"""``GET /health/``: is this Cronhouse able to run its jobs? For load balancers and probes.

    200 {"status": "ok", "checks": {...}}      every check passed
    503 {"status": "fail", "failed": [...], "checks": {...}}

Checks: ``database`` (SELECT 1), ``broker`` (a Redis PING, or the filesystem broker's folders,
when a broker is configured), ``beat`` (the leading beat's heartbeat row is younger than
JOBS_HEALTH_BEAT_MAX_AGE_SECONDS), ``worker`` (some run started or sent a heartbeat within
JOBS_HEALTH_WORKER_MAX_AGE_SECONDS -- process-jobs runs every minute, so an idle live worker
passes), ``late_jobs`` (the count; fails only above JOBS_HEALTH_MAX_LATE_JOBS when that is >= 0).
No authentication: the body names checks and counts, never hosts, URLs or errors' text.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Max
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .models import Job, JobRun, ServiceHeartbeat
from .selectors import LATE, job_rows

BEAT_HEARTBEAT = "beat"


def _age(moment: datetime | None, now: datetime) -> float | None:
    return round((now - moment).total_seconds(), 1) if moment else None


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except DatabaseError as exc:
        return {"ok": False, "error": type(exc).__name__}


def check_broker() -> dict:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
            return {"ok": True, "transport": "redis"}
        except redis.RedisError as exc:
            return {"ok": False, "transport": "redis", "error": type(exc).__name__}
    if url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        return {"ok": folder.is_dir() and os.access(folder, os.W_OK), "transport": "filesystem"}
    return {"ok": True, "transport": url.split(":", 1)[0], "checked": False}


def check_beat(now: datetime) -> dict:
    seen = ServiceHeartbeat.objects.filter(name=BEAT_HEARTBEAT).values_list("seen_at", flat=True).first()
    age = _age(seen, now)
    return {"ok": age is not None and age <= settings.JOBS_HEALTH_BEAT_MAX_AGE_SECONDS, "age_seconds": age}


def check_worker(now: datetime) -> dict:
    # Both reads are small: Job rows carry last_run_at; active runs use jobs_jobrun_active.
    finished = Job.objects.aggregate(at=Max("last_run_at"))["at"]
    active = JobRun.objects.filter(status=JobRun.Status.RUNNING).aggregate(at=Max("heartbeat_at"))["at"]
    seen = max(filter(None, (finished, active)), default=None)
    age = _age(seen, now)
    return {"ok": age is not None and age <= settings.JOBS_HEALTH_WORKER_MAX_AGE_SECONDS, "age_seconds": age}


def check_late_jobs(now: datetime) -> dict:
    count = sum(row.status == LATE for row in job_rows(now=now, recent_per_job=0))
    limit = settings.JOBS_HEALTH_MAX_LATE_JOBS
    return {"ok": limit < 0 or count <= limit, "count": count}


def health_report(now: datetime | None = None) -> dict:
    now = now or timezone.now()
    checks = {"database": check_database()}
    if settings.CELERY_BROKER_URL:
        checks["broker"] = check_broker()
    if checks["database"]["ok"]:
        checks["beat"] = check_beat(now)
        checks["worker"] = check_worker(now)
        checks["late_jobs"] = check_late_jobs(now)
    failed = sorted(name for name, result in checks.items() if not result["ok"])
    return {"status": "fail" if failed else "ok", "failed": failed, "checks": checks, "at": now.isoformat()}


@never_cache
@require_GET
def health(request):
    report = health_report()
    return JsonResponse(report, status=503 if report["failed"] else 200)
