"""Which channels a job's alerts go to, and the system check for alerts with nowhere to go.

A job's channels are the active channels routed to the job itself, to any operator group it is
limited to, and to its app (the app that ships its command; ``webhooks`` for a webhook handler's
job). A job with none of those is unrouted: its alerts go to the default, the e-mail addresses
of JOBS_ALERT_RECIPIENTS (else the superusers), as before channels existed.
"""

from __future__ import annotations

from collections import defaultdict

from django.core import checks
from django.db import DatabaseError, transaction
from django.db.models import Q

from jobs.models import Job, JobOperatorGroup
from jobs.models.versions import job_version_record
from jobs.operations.health import alert_recipients
from jobs.status.listing import app_of, command_apps
from notifications.models.channels import AlertChannel, AlertRoute

NAMED_IN_CHECK = 5
# Job ids per query when routing many jobs at once (well under SQLite's limit of parameters).
ROUTING_CHUNK = 1000


def alert_channels_for(job: Job) -> list[AlertChannel]:
    """The active channels routed to ``job`` (empty: the job is unrouted). Two queries."""
    groups = JobOperatorGroup.objects.filter(job_id=job.pk).values("group_id")
    target = Q(job_id=job.pk) | Q(group_id__in=groups)
    if app := app_of(job):
        target |= Q(app=app)
    channel_ids = AlertRoute.objects.filter(target).values("channel_id")
    return list(AlertChannel.objects.filter(pk__in=channel_ids, active=True).select_related("endpoint"))


def alert_channels_for_many(jobs: list[Job]) -> dict[int, list[AlertChannel]]:
    """``alert_channels_for`` of many jobs at once, by job id: the group and app routes once (a
    few rows), then the job routes and group memberships of each thousand jobs (two queries),
    so a summary over ten thousand jobs costs a few dozen queries, not two per job."""
    channels: dict[int, AlertChannel] = {}
    by_group: dict[int, set[int]] = defaultdict(set)
    by_app: dict[str, set[int]] = defaultdict(set)
    active = AlertRoute.objects.filter(channel__active=True).select_related("channel__endpoint")
    for route in active.filter(job__isnull=True):
        channels[route.channel_id] = route.channel
        (by_group[route.group_id] if route.group_id else by_app[route.app]).add(route.channel_id)
    routed: dict[int, set[int]] = defaultdict(set)
    ids = [job.pk for job in jobs]
    for start in range(0, len(ids), ROUTING_CHUNK):
        chunk = ids[start : start + ROUTING_CHUNK]
        for route in active.filter(job_id__in=chunk):
            channels[route.channel_id] = route.channel
            routed[route.job_id].add(route.channel_id)
        if by_group:
            limits = JobOperatorGroup.objects.filter(job_id__in=chunk, group_id__in=list(by_group))
            for job_id, group_id in limits.values_list("job_id", "group_id"):
                routed[job_id] |= by_group[group_id]
    if by_app:
        for job in jobs:
            routed[job.pk] |= by_app.get(app_of(job), set())
    return {job.pk: sorted((channels[pk] for pk in routed[job.pk]), key=lambda c: c.name) for job in jobs}


# -- a job's own channels, as its versions keep them (jobs.models.versions) ------------------


def job_channel_names(job_ids: list[int]) -> dict[int, list[str]]:
    """The channels routed to each job itself (not through a group or app), by name. One query."""
    names: dict[int, list[str]] = {pk: [] for pk in job_ids}
    routes = AlertRoute.objects.filter(job_id__in=job_ids).order_by("channel__name")
    for job_id, name in routes.values_list("job_id", "channel__name"):
        names[job_id].append(name)
    return names


def job_channels_restore(job: Job, names) -> None:
    """Route ``job`` itself to exactly the channels named (those that still exist)."""
    channels = list(AlertChannel.objects.filter(name__in=list(names or [])))
    AlertRoute.objects.filter(job_id=job.pk).exclude(channel__in=channels).delete()
    routed = set(AlertRoute.objects.filter(job_id=job.pk).values_list("channel_id", flat=True))
    AlertRoute.objects.bulk_create([AlertRoute(channel=c, job_id=job.pk) for c in channels if c.pk not in routed])


def on_job_route_changed(sender, instance: AlertRoute, **kwargs) -> None:
    """post_save / post_delete of a route: a job's own routing changed makes a version of the job,
    once the change commits (several routes saved together make one)."""
    if not instance.job_id:
        return
    job_id = instance.job_id

    def record() -> None:
        if job := Job.objects.select_related("webhook_handler").filter(pk=job_id).first():
            job_version_record(job)

    transaction.on_commit(record)


def _routed_jobs() -> Q:
    """Jobs with at least one active channel, through any route, as one condition (subqueries:
    no list of job ids travels through Python, however many jobs there are)."""
    routes = AlertRoute.objects.filter(channel__active=True)
    groups = JobOperatorGroup.objects.filter(group_id__in=routes.filter(group__isnull=False).values("group_id"))
    routed = Q(pk__in=routes.filter(job__isnull=False).values("job_id")) | Q(pk__in=groups.values("job_id"))
    apps = set(routes.exclude(app="").values_list("app", flat=True))
    if apps:
        routed |= Q(command__in=[command for command, app in command_apps().items() if app in apps])
        if "webhooks" in apps:
            routed |= Q(webhook_handler__isnull=False)
    return routed


def _unknown_apps() -> list[str]:
    known = set(command_apps().values()) | {"webhooks"}
    return sorted(set(AlertRoute.objects.exclude(app="").values_list("app", flat=True)) - known)


def check_alert_destinations(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Alerts with nowhere to go: jobs that alert, have no active channel and no default
    recipient (W010); routes to an app no command belongs to (W011); inactive routed channels (W012)."""
    try:
        return _unrouted_nowhere() + _unknown_app_routes() + _inactive_routed()
    except DatabaseError:
        return []  # before the first migrate


def unrouted_alerting_jobs(limit: int) -> list[str]:
    """The names (at most ``limit``, by name) of enabled jobs that alert and have no active
    channel: with no default recipient, their alerts go nowhere. One query."""
    unrouted = Job.objects.filter(notify_on_failure=True, enabled=True).exclude(_routed_jobs())
    return list(unrouted.order_by("name").values_list("name", flat=True)[:limit])


def _unrouted_nowhere() -> list[checks.CheckMessage]:
    recipients, _ = alert_recipients()
    if recipients:
        return []
    names = unrouted_alerting_jobs(NAMED_IN_CHECK + 1)
    if not names:
        return []
    more = ", ..." if len(names) > NAMED_IN_CHECK else ""
    return [
        checks.Warning(
            f"Alerts of jobs with no alert channel have nowhere to go: {', '.join(names[:NAMED_IN_CHECK])}{more}.",
            hint="Route them to a channel (admin: Alert routes), set JOBS_ALERT_RECIPIENTS, "
            "or give a superuser an e-mail address.",
            id="notifications.W010",
        )
    ]


def _unknown_app_routes() -> list[checks.CheckMessage]:
    return [
        checks.Warning(
            f"An alert route names the app {app!r}, which ships no job command: it routes nothing.",
            hint="Use an app label such as billing, accounts, notifications or webhooks.",
            id="notifications.W011",
        )
        for app in _unknown_apps()
    ]


def _inactive_routed() -> list[checks.CheckMessage]:
    names = AlertChannel.objects.filter(active=False, routes__isnull=False).distinct().values_list("name", flat=True)
    return [
        checks.Warning(
            f"Alert channel {name!r} is inactive but routed: its jobs' alerts go to their other channels, "
            "or to the default recipients when it was their only one.",
            id="notifications.W012",
        )
        for name in names
    ]
