"""Audit entries for staff changes to jobs, handlers and schedules, and for every action on a job
(run now, API trigger, enable/disable, edit) allowed or refused: who or which key, from where, why."""

from __future__ import annotations

from django.db import models

from core.redaction import MASK
from jobs.models import ApiKey, AuditEntry
from jobs.permissions.access import BOOTSTRAP

# Never copied into the audit log, whatever the model.
SECRET_FIELDS = {"secret", "password", "digest"}
# Recorded with their keys and every value masked (a webhook handler's extra headers).
WRITE_ONLY_VALUE_FIELDS = {"extra_headers"}


def _value(instance: models.Model, name: str):
    value = getattr(instance, name, None)
    if name in WRITE_ONLY_VALUE_FIELDS and isinstance(value, dict):
        return {key: MASK for key in value}
    return value if isinstance(value, (str, int, float, bool, type(None), dict, list)) else str(value)


def audit_record(
    *,
    actor,
    action: str,
    instance: models.Model,
    before: dict | None = None,
    fields=(),
    address: str = "",
    refused: str = "",
    changes: dict | None = None,
) -> AuditEntry:
    """Record who did what; ``before`` holds field values read before the change. ``actor`` is a
    user, an ApiKey (recorded by name and id, never the key), BOOTSTRAP, or None for the system."""
    changes = dict(changes or {})
    for name in fields:
        if name in SECRET_FIELDS:
            changes[name] = [MASK, MASK]
        else:
            changes[name] = [(before or {}).get(name), _value(instance, name)]
    api_key = actor if isinstance(actor, ApiKey) else None
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) and api_key is None else None,
        actor_label=_label(actor)[:150],
        api_key=api_key,
        address=address[:64],
        refused=refused[:200],
        action=action,
        object_type=instance._meta.model_name,
        object_id=str(instance.pk or ""),
        object_repr=str(instance)[:200],
        changes=changes,
    )


def actor_label(actor) -> str:
    """Who acted, as the audit log and a cancelled run name them (never a key itself)."""
    return _label(actor)


def _label(actor) -> str:
    if isinstance(actor, ApiKey):
        return f"API key {actor.name} (#{actor.pk})"
    if actor == BOOTSTRAP:
        return "API key JOBS_SECRET_KEY"
    return getattr(actor, "get_username", lambda: str(actor or "system"))()


def audit_run(*, who, job, run, address: str = "", about: dict | None = None) -> AuditEntry:
    """A run someone asked for (run now, API trigger): which run, and whether it was queued or
    skipped; ``about`` adds what it repeats (a retry, a slot run again)."""
    changes = {**(about or {}), "run": [None, run.pk], "status": [None, run.status]}
    if run.skip_reason:
        changes["skip_reason"] = [None, run.skip_reason]
    return audit_record(actor=who, action=AuditEntry.Action.RUN, instance=job, address=address, changes=changes)


def job_actions(job, limit: int = 20) -> list[AuditEntry]:
    """The newest audit entries about ``job`` (through the jobs_auditentry_object index)."""
    return list(AuditEntry.objects.filter(object_type="job", object_id=str(job.pk)).order_by("-at", "-id")[:limit])


def snapshot(instance: models.Model, fields) -> dict:
    return {name: _value(instance, name) for name in fields if name not in SECRET_FIELDS}


def audit_login_failed(*, username: str, address: str, locked_out: bool, path: str, actor=None) -> AuditEntry:
    """A refused login: the username tried, from where, on which page, and whether it was refused
    for a lockout. ``actor`` is the signed-in user re-entering their password, else None (whoever
    typed a username is not that user). No password is ever passed here."""
    refused = "locked out: too many failed logins" if locked_out else "wrong username or password"
    return AuditEntry.objects.create(
        actor=actor,
        actor_label=(actor.get_username() if actor is not None else "anonymous")[:150],
        action=AuditEntry.Action.OTHER,
        object_type="login",
        object_repr=username[:200],
        address=address[:64],
        refused=refused,
        changes={"path": [None, path[:200]]},
    )
