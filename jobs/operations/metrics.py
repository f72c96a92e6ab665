"""``GET /metrics``: Prometheus metrics, exported with prometheus-client (not hand-formatted).

Read from the database at scrape time, so every web process answers the same and nothing
is lost when a worker restarts. A scrape costs the same however many jobs and runs exist: fleet
series come from one aggregate over a recent window of runs (an index range) or over the job
rows' stored statistics, never over the whole run history; per-job series only for the jobs
that need a look (failing, late, running), at most JOBS_METRICS_MAX_JOB_SERIES of each, and
their counts from the same partial indexes: the same queries for a fleet of ten jobs or of 100,000.

    cronhouse_runs_recent{status}                  runs created in the window    jobs_jobrun_created
    cronhouse_job_run_duration_seconds             gauge histogram, runs of the window that finished
    cronhouse_jobs_last_duration_seconds           histogram of every job's last run duration (Job rows)
    cronhouse_jobs{state}                          jobs enabled / disabled                  (Job rows)
    cronhouse_jobs_failing / cronhouse_job_failing{job}  jobs whose last run failed    jobs_job_failing
    cronhouse_job_last_success_timestamp_seconds{job}   for the failing jobs
    cronhouse_jobs_late / cronhouse_job_late{job}  late jobs (Job.objects.late)             jobs_job_late
    cronhouse_jobs_running / cronhouse_job_running_seconds{job}  runs running now   jobs_jobrun_active
    cronhouse_runs_queued                          queued runs                      jobs_jobrun_active
    cronhouse_notifications{status}                registered by the notifications app (hook below)

Guarded by an API key (named, or the JOBS_SECRET_KEY bootstrap key) or a staff session with
jobs.view_jobrun.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q, Sum
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from jobs.models import Job, JobRun
from jobs.permissions.access import PERMISSIONS, VIEW
from jobs.permissions.api_keys import api_key_authenticate
from jobs.status.listing import active_job_ids

DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600)
REGISTRY = CollectorRegistry(auto_describe=False)
_registered: set[str] = set()


def register_collector(collector, *, key: str) -> None:
    """The hook other apps use to add metrics to /metrics (``jobs`` imports none of them).
    Registering the same ``key`` twice is a no-op."""
    if key not in _registered:
        REGISTRY.register(collector)
        _registered.add(key)


def _bucket_counts(queryset, field: str) -> dict:
    """One aggregate: how many rows, their total ``field``, and how many at or under each bucket."""
    buckets = {
        f"le{i}": Count("pk", filter=Q(**{f"{field}__lte": timedelta(seconds=bound)}))
        for i, bound in enumerate(DURATION_BUCKETS)
    }
    return queryset.filter(**{f"{field}__isnull": False}).aggregate(count=Count("pk"), total=Sum(field), **buckets)


def _cumulative(row: dict) -> tuple[list[tuple[str, float]], float]:
    buckets = [(str(float(bound)), row[f"le{i}"]) for i, bound in enumerate(DURATION_BUCKETS)]
    buckets.append(("+Inf", row["count"]))
    return buckets, row["total"].total_seconds() if row["total"] is not None else 0.0


def recent_runs(now: datetime):
    """Runs created in the last JOBS_METRICS_WINDOW_SECONDS: a range of jobs_jobrun_created."""
    return JobRun.objects.filter(created_at__gt=now - timedelta(seconds=settings.JOBS_METRICS_WINDOW_SECONDS))


WINDOW_KEY = "jobs:metrics-window"


def window_counts(now: datetime) -> dict:
    """The window's runs by status and the finished ones' duration buckets, in one pass over the
    window's index range; shared between scrapes for JOBS_METRICS_WINDOW_CACHE_SECONDS (an hour of
    a busy fleet's runs is hundreds of thousands of rows; several Prometheus servers, or a short
    scrape interval, would each read them). Without the cache (Redis down) read per scrape."""
    seconds = settings.JOBS_METRICS_WINDOW_CACHE_SECONDS
    try:
        counts = cache.get(WINDOW_KEY) if seconds > 0 else None
    except Exception:  # the cache is an optimisation: never a failed scrape
        counts = None
    if counts is None:
        finished = Q(finished_at__isnull=False, duration__isnull=False)
        statuses = {f"status_{status}": Count("pk", filter=Q(status=status)) for status in JobRun.Status.values}
        buckets = {
            f"le{i}": Count("pk", filter=finished & Q(duration__lte=timedelta(seconds=bound)))
            for i, bound in enumerate(DURATION_BUCKETS)
        }
        counts = recent_runs(now).aggregate(
            count=Count("pk", filter=finished), total=Sum("duration", filter=finished), **statuses, **buckets
        )
        try:
            if seconds > 0:
                cache.set(WINDOW_KEY, counts, seconds)
        except Exception:
            pass
    return counts


def _window_families(now: datetime):
    window = settings.JOBS_METRICS_WINDOW_SECONDS
    counts = window_counts(now)
    statuses = GaugeMetricFamily(
        "cronhouse_runs_recent",
        f"Job runs created in the last {window} s (JOBS_METRICS_WINDOW_SECONDS), by status.",
        labels=["status"],
    )
    for status in JobRun.Status.values:
        statuses.add_metric([status], counts[f"status_{status}"])
    yield statuses
    buckets, total = _cumulative(counts)
    durations = GaugeHistogramMetricFamily(
        "cronhouse_job_run_duration_seconds", f"Duration of the runs created in the last {window} s that finished."
    )
    durations.add_metric([], buckets, total)
    yield durations


def _job_families():
    counts = Job.objects.aggregate(on=Count("pk", filter=Q(enabled=True)), off=Count("pk", filter=Q(enabled=False)))
    jobs = GaugeMetricFamily("cronhouse_jobs", "Jobs, by state.", labels=["state"])
    jobs.add_metric(["enabled"], counts["on"])
    jobs.add_metric(["disabled"], counts["off"])
    yield jobs
    buckets, total = _cumulative(_bucket_counts(Job.objects.all(), "last_duration"))
    last = HistogramMetricFamily(
        "cronhouse_jobs_last_duration_seconds", "Duration of each job's last run, across jobs (stored on the job)."
    )
    last.add_metric([], buckets, total)
    yield last


def _failing_families():
    shown = settings.JOBS_METRICS_MAX_JOB_SERIES
    failing = Job.objects.filter(last_run_status__in=JobRun.FAILURE_STATUSES)
    rows = list(failing.order_by("name").values_list("name", "consecutive_failures", "last_success_at")[:shown])
    count = failing.count()
    yield GaugeMetricFamily("cronhouse_jobs_failing", "Jobs whose last run failed, timed out or was abandoned.", count)
    streak = GaugeMetricFamily(
        "cronhouse_job_failing", "Consecutive failed runs of a job whose last run failed.", labels=["job"]
    )
    success = GaugeMetricFamily(
        "cronhouse_job_last_success_timestamp_seconds", "Unix time of a failing job's last success.", labels=["job"]
    )
    for name, failures, last_success in rows:
        streak.add_metric([name], failures)
        if last_success is not None:
            success.add_metric([name], last_success.timestamp())
    yield streak
    yield success


def _late_families(now: datetime):
    shown = settings.JOBS_METRICS_MAX_JOB_SERIES
    # Late and not running, as the dashboard and /health/ count them (jobs.status.listing.late_count).
    late = Job.objects.late(now).exclude(pk__in=active_job_ids())
    names = list(late.order_by("late_at", "pk").values_list("name", flat=True)[:shown])
    count = late.count()
    yield GaugeMetricFamily("cronhouse_jobs_late", "Jobs late right now.", value=count)
    family = GaugeMetricFamily("cronhouse_job_late", "1 for each job late right now.", labels=["job"])
    for name in names:
        family.add_metric([name], 1)
    yield family


def _active_families(now: datetime):
    shown = settings.JOBS_METRICS_MAX_JOB_SERIES
    running = JobRun.objects.filter(status=JobRun.Status.RUNNING)
    rows = list(running.order_by("started_at", "pk").values_list("job__name", "started_at")[:shown])
    count = running.count()
    yield GaugeMetricFamily("cronhouse_jobs_running", "Jobs with a run running now.", value=count)
    family = GaugeMetricFamily(
        "cronhouse_job_running_seconds", "How long a job's current run has been running.", labels=["job"]
    )
    for name, started in rows:
        family.add_metric([name], max(0.0, (now - started).total_seconds()) if started else 0.0)
    yield family
    queued = JobRun.objects.filter(status=JobRun.Status.QUEUED).count()
    yield GaugeMetricFamily("cronhouse_runs_queued", "Runs queued (waiting for a worker or a retry).", value=queued)


class JobsCollector:
    def collect(self):
        now = timezone.now()
        yield from _window_families(now)
        yield from _job_families()
        yield from _failing_families()
        yield from _late_families(now)
        yield from _active_families(now)


register_collector(JobsCollector(), key="jobs")


def _allowed(request) -> bool:
    """Any valid API key (named or the bootstrap key), or staff who may see runs (jobs.view_jobrun)."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if header is None:
        user = request.user
        return user.is_authenticated and user.is_staff and user.has_perm(PERMISSIONS[VIEW])
    presented = api_key_authenticate(header)
    return presented.holder is not None and not presented.refused


@never_cache
@require_GET
def metrics(request):
    if not _allowed(request):
        response = JsonResponse({"error": "missing or wrong bearer token (or log in as staff)"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="cronhouse"'
        return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
