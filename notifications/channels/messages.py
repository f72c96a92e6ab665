"""What an alert says on each kind of channel: a Slack message, a PagerDuty Events v2 event, a
signed-webhook ``job.alert`` payload. Built when the alert is raised and stored on its delivery
as it will be sent (a PagerDuty routing key is added only at send time: it is a secret).

An ``Alert`` is what ``alerts.py`` and ``ops_alerts.py`` already know: the kind, the job, the
context of its e-mail (error text already redacted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse

from core.formatting import one_line

ERROR_LINE = 300
# Lines of one digest or summary message: a channel that gets hundreds needs the dashboard.
DIGEST_LINES = 40
# PagerDuty severities; "recovered" kinds resolve instead of triggering.
SEVERITY = {
    "failed": "error",
    "escalated": "critical",
    "late": "warning",
    "late_summary": "warning",
    "slow": "warning",
    "test": "info",
}
# Which incident an alert opens or closes: a recovery resolves the failure's incident, the end
# of a late episode the late one. Slow runs open no incident (nothing ever resolves them).
INCIDENT = {
    "failed": "failing",
    "escalated": "failing",
    "recovered": "failing",
    "late": "late",
    "late_recovered": "late",
    "late_summary": "late-summary",
    "late_summary_ended": "late-summary",
    "test": "test",
    "test_resolved": "test",
}
RESOLVES = frozenset({"recovered", "late_recovered", "late_summary_ended", "test_resolved"})
# One message for many jobs found late (or no longer late) in one check, e.g. after downtime.
SUMMARY_KINDS = frozenset({"late_summary", "late_summary_ended"})
EMOJI = {
    "failed": ":red_circle:",
    "escalated": ":rotating_light:",
    "recovered": ":large_green_circle:",
    "late": ":hourglass:",
    "late_recovered": ":large_green_circle:",
    "late_summary": ":hourglass:",
    "late_summary_ended": ":large_green_circle:",
    "slow": ":turtle:",
    "test": ":wave:",
}


@dataclass
class Alert:
    kind: str  # failed, escalated, recovered, late, late_recovered, slow, test, test_resolved, late_summary...
    job_name: str
    job_id: int | None
    key: str  # what makes this alert itself: a run id, a job and slot
    context: dict = field(default_factory=dict)

    @property
    def incident_key(self) -> str:
        """PagerDuty's dedup_key: the same for a job's trigger and the resolve that ends it."""
        incident = INCIDENT.get(self.kind)
        if incident == "test":
            return f"cronhouse:test:{self.key}"  # each test opens and closes its own incident
        if incident == "late-summary":
            return "cronhouse:late-summary"  # one incident for the jobs a summary names
        return f"cronhouse:{self.job_name}:{incident}" if incident else ""

    def link(self) -> str:
        base = settings.SITE_URL.rstrip("/")
        if run_id := self.context.get("run_id"):
            return base + reverse("admin:jobs_jobrun_change", args=[run_id])
        if self.job_id:
            return base + reverse("admin:jobs_job_change", args=[self.job_id])
        return base + "/dashboard/"


def alert_summary(alert: Alert) -> str:
    """One line a person reads first, on any channel."""
    c, name = alert.context, alert.job_name
    texts = {
        "failed": f"Job {name} failed (run #{c.get('run_id')}, {c.get('status', 'failed').lower()})",
        "escalated": f"Job {name} failed {c.get('consecutive_failures')} times in a row",
        "recovered": f"Job {name} recovered: run #{c.get('run_id')} succeeded",
        "late": f"Job {name} is late: its {c.get('slot')} run has not started",
        "late_recovered": f"Job {name} is no longer late",
        "slow": f"Job {name} is slow: run #{c.get('run_id')} is past its expected {c.get('expected_seconds')} s",
        "test": f"Test alert from Cronhouse to channel {name}",
        "late_summary": f"{c.get('count')} jobs are late: their scheduled runs have not started",
        "late_summary_ended": f"{c.get('count')} jobs are no longer late",
    }
    return texts.get(alert.kind, f"Job {name}: {alert.kind}")


def _error_line(alert: Alert) -> str:
    return one_line(alert.context.get("error") or "")[:ERROR_LINE]


def summary_lines(context: dict) -> list[str]:
    """The jobs a late summary names, one line each (the first ``DIGEST_LINES``), then how many more."""
    lines = [f"- {job['name']} (slot {job['slot']})" for job in context.get("jobs", [])]
    if more := context.get("more"):
        lines.append(f"... and {more} more")
    return lines


def slack_message(alert: Alert) -> dict:
    """An incoming-webhook message: ``text`` (what Mattermost, Rocket.Chat, Teams workflows and
    notifications show) and the same as Block Kit blocks for Slack."""
    summary = f"{EMOJI.get(alert.kind, '')} {alert_summary(alert)}".strip()
    lines = [f"*{summary}*"]
    if alert.kind in SUMMARY_KINDS:
        lines.extend(summary_lines(alert.context))
    if error := _error_line(alert):
        lines.append(f"> {error}")
    lines.append(f"<{alert.link()}|Open in Cronhouse>")
    return {
        "text": f"{summary}: {alert.link()}",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}],
    }


def pagerduty_event(alert: Alert) -> dict | None:
    """A PagerDuty Events v2 event without its ``routing_key``; None for an alert that opens no
    incident (slow)."""
    if not alert.incident_key:
        return None
    if alert.kind in RESOLVES:
        return {"event_action": "resolve", "dedup_key": alert.incident_key}
    details = {k: v for k, v in alert.context.items() if k in ("run_id", "attempt", "consecutive_failures", "slot")}
    if alert.kind in SUMMARY_KINDS:
        details = {"count": alert.context.get("count"), "jobs": [job["name"] for job in alert.context.get("jobs", [])]}
    if error := _error_line(alert):
        details["error"] = error
    return {
        "event_action": "trigger",
        "dedup_key": alert.incident_key,
        "payload": {
            "summary": alert_summary(alert)[:1024],
            "source": "cronhouse",
            "severity": SEVERITY.get(alert.kind, "error"),
            "component": alert.job_name or "cronhouse",
            "class": alert.kind,
            "custom_details": details,
        },
        "client": "Cronhouse",
        "client_url": settings.SITE_URL,
        "links": [{"href": alert.link(), "text": "Open in Cronhouse"}],
    }


def webhook_alert_payload(alert: Alert) -> dict:
    """The ``data`` of a ``job.alert`` event on a signed webhook."""
    return {
        "alert": alert.kind,
        "job": alert.job_name,
        "summary": alert_summary(alert),
        "incident_key": alert.incident_key,
        "url": alert.link(),
        "details": alert.context,
    }


def digest_link() -> str:
    return settings.SITE_URL.rstrip("/") + "/dashboard/"


def slack_digest(summaries: list[str], *, link: str) -> dict:
    """One message for a burst of alerts on a channel: how many, then one line each (the first
    ``DIGEST_LINES``; a channel that gets hundreds needs the dashboard, not a longer message)."""
    lines = [f"- {summary}" for summary in summaries[:DIGEST_LINES]]
    if len(summaries) > DIGEST_LINES:
        lines.append(f"... and {len(summaries) - DIGEST_LINES} more")
    title = f":bell: {len(summaries)} alerts from Cronhouse within a minute"
    return {
        "text": f"{title}: {link}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n" + "\n".join(lines)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|Open the dashboard>"}},
        ],
    }


def email_digest_context(summaries: list[str]) -> dict:
    """The context of the ``job_alerts/digest`` e-mail: the same lines as the chat digest."""
    return {
        "count": len(summaries),
        "summaries": summaries[:DIGEST_LINES],
        "more": max(len(summaries) - DIGEST_LINES, 0),
    }
