"""Audit entries for staff changes to jobs, handlers and schedules."""

from __future__ import annotations

from django.db import models

from .models import AuditEntry
from .redaction import MASK

# Never copied into the audit log, whatever the model.
SECRET_FIELDS = {"secret", "password"}
# Recorded with their keys and every value masked (a webhook handler's extra headers).
WRITE_ONLY_VALUE_FIELDS = {"extra_headers"}


def _value(instance: models.Model, name: str):
    value = getattr(instance, name, None)
    if name in WRITE_ONLY_VALUE_FIELDS and isinstance(value, dict):
        return {key: MASK for key in value}
    return value if isinstance(value, (str, int, float, bool, type(None), dict, list)) else str(value)


def audit_record(*, actor, action: str, instance: models.Model, before: dict | None = None, fields=()) -> AuditEntry:
    """Record who did what; ``before`` holds field values read before the change."""
    changes = {}
    for name in fields:
        if name in SECRET_FIELDS:
            changes[name] = [MASK, MASK]
        else:
            changes[name] = [(before or {}).get(name), _value(instance, name)]
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=getattr(actor, "get_username", lambda: str(actor or "system"))(),
        action=action,
        object_type=instance._meta.model_name,
        object_id=str(instance.pk or ""),
        object_repr=str(instance)[:200],
        changes=changes,
    )


def snapshot(instance: models.Model, fields) -> dict:
    return {name: _value(instance, name) for name in fields if name not in SECRET_FIELDS}
