"""``GET /metrics``: Prometheus metrics, exported with prometheus-client (not hand-formatted).

Read from the database at scrape time, so every web process answers the same and nothing
is lost when a worker restarts: the tables are the source of truth.

    cronhouse_job_runs{job,status}                 runs recorded (within retention)    1 GROUP BY
    cronhouse_job_run_duration_seconds{job}        histogram of finished runs           1 GROUP BY
    cronhouse_job_last_success_timestamp_seconds{job}                                   Job rows
    cronhouse_job_late{job} / cronhouse_jobs_late  jobs.lateness                        1 + late candidates
    cronhouse_runs_queued                          queued runs (partial index)          1
    cronhouse_notifications{status}                registered by the notifications app (hook below)

Guarded by an API key (named, or the JOBS_SECRET_KEY bootstrap key) or a staff session with
jobs.view_jobrun.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q, Sum
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from .access import PERMISSIONS, VIEW
from .api_keys import api_key_authenticate
from .models import JobRun
from .selectors import LATE, job_rows

DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600)
REGISTRY = CollectorRegistry(auto_describe=False)
_registered: set[str] = set()


def register_collector(collector, *, key: str) -> None:
    """The hook other apps use to add metrics to /metrics (``jobs`` imports none of them).
    Registering the same ``key`` twice is a no-op."""
    if key not in _registered:
        REGISTRY.register(collector)
        _registered.add(key)


def _run_counts(names: dict[int, str]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "cronhouse_job_runs", "Job runs recorded (within retention) by status.", labels=["job", "status"]
    )
    rows = JobRun.objects.values_list("job_id", "status").annotate(n=Count("id")).order_by()
    for job_id, status, count in rows:
        family.add_metric([names.get(job_id, str(job_id)), status], count)
    return family


def _durations(names: dict[int, str]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "cronhouse_job_run_duration_seconds", "Duration of finished job runs.", labels=["job"]
    )
    buckets = {
        f"le{i}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(DURATION_BUCKETS)
    }
    rows = (
        JobRun.objects.filter(duration__isnull=False, finished_at__isnull=False, started_at__isnull=False)
        .values("job_id")
        .annotate(count=Count("id"), total=Sum("duration"), **buckets)
        .order_by()
    )
    for row in rows:
        cumulative = [(str(float(bound)), row[f"le{i}"]) for i, bound in enumerate(DURATION_BUCKETS)]
        cumulative.append(("+Inf", row["count"]))
        total = row["total"].total_seconds() if row["total"] is not None else 0.0
        family.add_metric([names.get(row["job_id"], str(row["job_id"]))], cumulative, total)
    return family


class JobsCollector:
    def collect(self):
        now = timezone.now()
        rows = job_rows(now=now, recent_per_job=0)
        names = {row.job.pk: row.job.name for row in rows}
        yield _run_counts(names)
        yield _durations(names)
        last_success = GaugeMetricFamily(
            "cronhouse_job_last_success_timestamp_seconds", "Unix time of the job's last success.", labels=["job"]
        )
        late = GaugeMetricFamily("cronhouse_job_late", "1 if the job is late (jobs.lateness), else 0.", labels=["job"])
        late_count = 0
        for row in rows:
            if row.job.last_success_at:
                last_success.add_metric([row.job.name], row.job.last_success_at.timestamp())
            late.add_metric([row.job.name], int(row.status == LATE))
            late_count += row.status == LATE
        yield last_success
        yield late
        yield GaugeMetricFamily("cronhouse_jobs_late", "Jobs late right now.", value=late_count)
        queued = JobRun.objects.filter(status=JobRun.Status.QUEUED).count()
        yield GaugeMetricFamily("cronhouse_runs_queued", "Runs queued (waiting for a worker or a retry).", value=queued)


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
