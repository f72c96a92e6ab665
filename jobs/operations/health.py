"""``GET /health/``: is this Cronhouse able to run its jobs? For load balancers and probes.

    200 {"status": "ok", "checks": {...}}                            every check passed
    200 {"status": "degraded", "degraded": [...], "checks": {...}}   jobs run, but not all is well
    503 {"status": "fail", "failed": [...], "checks": {...}}

Checks: ``database`` (SELECT 1), ``broker`` (a Redis PING, or the filesystem broker's folders,
when a broker is configured), ``beat`` (the leading beat's heartbeat row is younger than
JOBS_HEALTH_BEAT_MAX_AGE_SECONDS on the database's clock; ``clock_offset_seconds`` is the
leader's clock minus the database's), ``worker`` (some run started or sent a heartbeat within
JOBS_HEALTH_WORKER_MAX_AGE_SECONDS -- process-jobs runs every minute, so an idle live worker
passes), ``late_jobs`` (the count; fails only above JOBS_HEALTH_MAX_LATE_JOBS when that is >= 0).

Degraded checks (``"degraded": true``, still ``"ok": true``: a load balancer keeps the node,
a monitor reading ``status`` sees it): ``warnings`` (jobs whose last run succeeded with
warnings: the count and the first WARNED_JOBS_SHOWN (5) names), and the checks other
apps register with ``health_check_register`` (notifications' ``mail``: the last drain could
not use the mail server). No check here opens a connection to anything but the database and
the broker.

No authentication: the body names checks, counts and job names, never hosts, URLs or errors' text.

The staff dashboard shows the same checks as text (``dashboard_health``), plus the run queue
and where job alerts go (``alert_recipients``: JOBS_ALERT_RECIPIENTS, else the superusers).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection
from django.db.models import Count, Max, Min, Q
from django.db.models.functions import Coalesce
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.formatting import format_duration
from jobs.models import Job, JobRun, ServiceHeartbeat
from jobs.scheduling.clock import db_now, offset_text
from jobs.scheduling.leader import BEAT_HEARTBEAT
from jobs.status.listing import late_count

# Names of warned jobs /health/ and the dashboard list (the count says how many in all).
WARNED_JOBS_SHOWN = 5


@dataclass(frozen=True)
class HealthCheck:
    """A check another app adds to /health/ and the dashboard (``jobs`` imports no other app)."""

    label: str
    check: Callable[[datetime], dict]  # -> {"ok": bool, "degraded": bool, ...counts and times}
    describe: Callable[[dict], str]  # the dashboard's text for that result


_registered: dict[str, HealthCheck] = {}


def health_check_register(name: str, *, label: str, check: Callable, describe: Callable) -> None:
    """Add a check (called from an AppConfig.ready); registering ``name`` again replaces it."""
    _registered[name] = HealthCheck(label, check, describe)


def _age(moment: datetime | None, now: datetime) -> float | None:
    return round((now - moment).total_seconds(), 1) if moment else None


def _now() -> datetime:
    try:
        return db_now()
    except (DatabaseError, InterfaceError):  # the database check reports it; the rest are not run
        return timezone.now()


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
    """The leader's heartbeat: its age on the database's clock, in which the leader wrote it
    (never negative, whatever this web process's clock says), and the leader's clock offset."""
    row = ServiceHeartbeat.objects.filter(name=BEAT_HEARTBEAT).values("seen_at", "clock_offset_seconds").first()
    if row is None:
        return {"ok": False, "age_seconds": None, "clock_offset_seconds": None}
    age = max(_age(row["seen_at"], db_now()), 0.0)
    offset = row["clock_offset_seconds"]
    return {
        "ok": age <= settings.JOBS_HEALTH_BEAT_MAX_AGE_SECONDS,
        # Degraded: slots still fire on the database's clock, but that host's clock needs fixing.
        "degraded": offset is not None and abs(offset) > settings.JOBS_CLOCK_SKEW_WARN_SECONDS,
        "age_seconds": age,
        "clock_offset_seconds": offset,
    }


def check_worker(now: datetime) -> dict:
    # Both reads are small: Job rows carry last_run_at; active runs use jobs_jobrun_active.
    finished = Job.objects.aggregate(at=Max("last_run_at"))["at"]
    active = JobRun.objects.filter(status=JobRun.Status.RUNNING).aggregate(at=Max("heartbeat_at"))["at"]
    seen = max(filter(None, (finished, active)), default=None)
    age = _age(seen, now)
    return {"ok": age is not None and age <= settings.JOBS_HEALTH_WORKER_MAX_AGE_SECONDS, "age_seconds": age}


def check_late_jobs(now: datetime) -> dict:
    count = late_count(now)
    limit = settings.JOBS_HEALTH_MAX_LATE_JOBS
    return {"ok": limit < 0 or count <= limit, "count": count}


def check_warnings(now: datetime) -> dict:
    """Jobs whose last run succeeded with warnings: two reads of the partial index
    jobs_job_warned (a few names, and the count)."""
    warned = Job.objects.filter(last_run_warnings__gt=0)
    names = list(warned.order_by("name").values_list("name", flat=True)[:WARNED_JOBS_SHOWN])
    count = warned.count()
    return {"ok": True, "degraded": bool(count), "count": count, "jobs": names}


def _registered_check(name: str, now: datetime) -> dict:
    try:
        return _registered[name].check(now)
    except Exception as exc:  # a broken check is reported as failing, never as a 500
        return {"ok": False, "error": type(exc).__name__}


def health_report(now: datetime | None = None) -> dict:
    """Every check, by the database's clock when it answers (``jobs.scheduling.clock``)."""
    now = now or _now()
    checks = {"database": check_database()}
    if settings.CELERY_BROKER_URL:
        checks["broker"] = check_broker()
    if checks["database"]["ok"]:
        checks["beat"] = check_beat(now)
        checks["worker"] = check_worker(now)
        checks["late_jobs"] = check_late_jobs(now)
        checks["warnings"] = check_warnings(now)
        for name in _registered:
            checks[name] = _registered_check(name, now)
    failed = sorted(name for name, result in checks.items() if not result["ok"])
    degraded = sorted(name for name, result in checks.items() if result["ok"] and result.get("degraded"))
    status = "fail" if failed else "degraded" if degraded else "ok"
    return {"status": status, "failed": failed, "degraded": degraded, "checks": checks, "at": now.isoformat()}


def check_queue(now: datetime) -> dict:
    """Runs waiting for a worker (a retry or a jittered run still before its ``not_before`` is not
    waiting yet, and once due has waited since then).
    Not part of /health/: it fails when the oldest has waited longer than a live worker would
    let it (JOBS_HEALTH_WORKER_MAX_AGE_SECONDS), which only the dashboard reports."""
    due = JobRun.objects.filter(Q(not_before__isnull=True) | Q(not_before__lte=now), status=JobRun.Status.QUEUED)
    queue = due.aggregate(count=Count("pk"), oldest=Min(Coalesce("not_before", "created_at")))
    age = _age(queue["oldest"], now)
    return {
        "ok": age is None or age <= settings.JOBS_HEALTH_WORKER_MAX_AGE_SECONDS,
        "count": queue["count"],
        "oldest_age_seconds": age,
    }


def alert_recipients() -> tuple[list[str], str]:
    """Who job alerts e-mail, and why: ``(addresses, "setting" | "superusers" | "none")``.
    JOBS_ALERT_RECIPIENTS when set; else every active superuser with an e-mail address, so a
    fresh install still tells somebody when a job fails."""
    if settings.JOBS_ALERT_RECIPIENTS:
        return list(settings.JOBS_ALERT_RECIPIENTS), "setting"
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email="")
    emails = sorted(set(users.values_list("email", flat=True)))
    return emails, "superusers" if emails else "none"


# Set by the app that routes alerts (notifications, in its ready()): the names of at most
# ``limit`` jobs whose alerts no channel takes. Without one, every job's alerts are e-mail.
_unrouted_jobs: Callable[[int], list[str]] | None = None
UNROUTED_NAMED = 5


def alert_routing_register(*, unrouted_jobs: Callable[[int], list[str]]) -> None:
    global _unrouted_jobs
    _unrouted_jobs = unrouted_jobs


def alert_routing_text() -> tuple[str, bool]:
    """What the dashboard's banner and the jobs.W005 check say about alerts: (text, nowhere).
    With no default recipient, "nowhere" names the jobs that alert with no channel either."""
    emails, source = alert_recipients()
    if source == "setting":
        return "", False
    if source == "superusers":
        return f"JOBS_ALERT_RECIPIENTS is empty: alerts go to the superusers: {', '.join(emails)}.", False
    if _unrouted_jobs is None:
        return (
            "Job alerts have nowhere to go: JOBS_ALERT_RECIPIENTS is empty and no superuser has an e-mail address.",
            True,
        )
    names = _unrouted_jobs(UNROUTED_NAMED + 1)
    if not names:
        return (
            "Every job that alerts has an alert channel; a job without one would alert nowhere: "
            "JOBS_ALERT_RECIPIENTS is empty and no superuser has an e-mail address.",
            False,
        )
    shown = ", ".join(names[:UNROUTED_NAMED]) + (", ..." if len(names) > UNROUTED_NAMED else "")
    return (
        f"Alerts of jobs with no alert channel have nowhere to go: {shown}. JOBS_ALERT_RECIPIENTS is empty "
        "and no superuser has an e-mail address.",
        True,
    )


def _ago(age: float | None, never: str) -> str:
    return never if age is None else f"{format_duration(age)} ago"


def dashboard_health(now: datetime) -> list[dict]:
    """``health_report``'s checks and the queue as the dashboard's items: name, label, ok, text."""
    checks = health_report(now)["checks"]
    checks["queue"] = check_queue(now)
    # Without the database, beat, worker and late_jobs were not checked: shown as unknown.
    unknown = {"ok": False, "age_seconds": None, "count": "unknown"}
    beat, worker, late = (checks.get(name, unknown) for name in ("beat", "worker", "late_jobs"))
    broker = checks.get("broker", {"ok": True, "checked": False, "transport": "none"})
    queue = checks["queue"]
    items = [
        ("database", "Database", checks["database"]["ok"], "reachable" if checks["database"]["ok"] else "unreachable"),
        ("beat", "Beat", beat["ok"], "unknown" if beat is unknown else _beat_text(beat)),
        (
            "workers",
            "Workers",
            worker["ok"],
            "unknown" if worker is unknown else _ago(worker["age_seconds"], "never seen"),
        ),
        ("broker", "Broker", broker["ok"], _broker_text(broker)),
        ("queue", "Queued runs", queue["ok"], _queue_text(queue)),
        ("late_jobs", "Late jobs", late["ok"], str(late["count"])),
    ]
    shown = [
        _item(name, label, checks.get(name, {"ok": ok}) if name == "beat" else {"ok": ok}, text)
        for name, label, ok, text in items
    ]
    warned = checks.get("warnings")
    if warned is not None:
        shown.append(_item("warnings", "Warnings", warned, _warnings_text(warned)))
    for name, registered in _registered.items():
        if name in checks:
            result = checks[name]
            text = registered.describe(result) if "error" not in result else "check failed"
            shown.append(_item(name, registered.label, result, text))
    for item in shown:
        item["badge"] = "problem" if not item["ok"] else "degraded" if item["degraded"] else "ok"
        item["state"] = "bad" if not item["ok"] else "warn" if item["degraded"] else "ok"
    return shown


def _item(name: str, label: str, result: dict, text: str) -> dict:
    return {"name": name, "label": label, "ok": result["ok"], "degraded": bool(result.get("degraded")), "text": text}


def _warnings_text(warned: dict) -> str:
    if not warned["count"]:
        return "none"
    more = warned["count"] - len(warned["jobs"])
    return f"{', '.join(warned['jobs'])}{f' and {more} more' if more > 0 else ''}: succeeded with warnings"


def _beat_text(beat: dict) -> str:
    seen = _ago(beat["age_seconds"], "no heartbeat")
    if beat["age_seconds"] is None:
        return seen
    return f"{seen}; leader's clock offset {offset_text(beat.get('clock_offset_seconds'))}"


def _broker_text(broker: dict) -> str:
    if broker.get("checked") is False:
        return f"{broker['transport']} (not checked)"
    return "reachable" if broker["ok"] else "unreachable"


def _queue_text(queue: dict) -> str:
    if not queue["count"]:
        return "none waiting"
    return f"{queue['count']}, oldest waiting {format_duration(queue['oldest_age_seconds'])}"


@never_cache
@require_GET
def health(request):
    report = health_report()
    return JsonResponse(report, status=503 if report["failed"] else 200)
