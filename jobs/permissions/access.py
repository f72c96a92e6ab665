"""The one answer to "may this user (or API key) do this on that job", used by every surface:
the dashboard, the session and bearer API, the admin and the schedule page (docs/permissions.md).

A user may do ``action`` on a job when the user is active staff and either a superuser, or holds
the action's model permission and the job is open to them: it has no operator groups, or the
user belongs to one of them. An API key may trigger, read and cancel the runs of the jobs in its scope.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from jobs.models import ApiKey, Job, JobOperatorGroup

VIEW = "view"
RUN = "run"
TOGGLE = "toggle"
CHANGE = "change"
CANCEL = "cancel"

PERMISSIONS = {
    VIEW: "jobs.view_jobrun",
    RUN: "jobs.run_job",
    TOGGLE: "jobs.toggle_job",
    CHANGE: "jobs.change_job",
    CANCEL: "jobs.cancel_run",
}
ADD_JOB = "jobs.add_job"
DELETE_JOB = "jobs.delete_job"
HANDLER_PERMISSIONS = {action: f"jobs.{action}_webhookhandler" for action in ("view", "add", "change", "delete")}
# What an API key may do on the jobs in its scope: read, trigger, and cancel what it triggers.
KEY_ACTIONS = (VIEW, RUN, CANCEL)
# The destructive beat-schedule actions (pause/resume, unschedule, purge orphans, delete in the admin).
MANAGE_SCHEDULE = "jobs.manage_schedule"

# Stands for the JOBS_SECRET_KEY bootstrap key, which may do what an unlimited named key may.
BOOTSTRAP = "bootstrap"


def allowed_jobs(who, action: str) -> QuerySet[Job]:
    """The jobs ``who`` (a user, an ApiKey, or BOOTSTRAP) may do ``action`` on."""
    if action not in PERMISSIONS:
        raise ValueError(f"unknown action {action!r}")
    jobs = Job.objects.all()
    if who == BOOTSTRAP:
        return jobs
    if isinstance(who, ApiKey):
        return _key_scope(who, jobs) if action in KEY_ACTIONS else jobs.none()
    if who is None or not (who.is_active and who.is_staff):
        return jobs.none()
    if who.is_superuser:
        return jobs
    if not who.has_perm(PERMISSIONS[action]):
        return jobs.none()
    limits = JobOperatorGroup.objects.filter(job=OuterRef("pk"))
    return jobs.filter(~Exists(limits) | Exists(limits.filter(group__user=who)))


def job_allows(who, action: str, job: Job) -> bool:
    """Whether ``who`` may do ``action`` on ``job``: the same rule as ``allowed_jobs``."""
    return allowed_jobs(who, action).filter(pk=job.pk).exists()


def allowed_ids(who, action: str) -> set[int]:
    """``allowed_jobs`` as a set of ids, for a page that asks about many jobs at once."""
    return set(allowed_jobs(who, action).values_list("pk", flat=True))


def _staff_with(who, permission: str) -> bool:
    """An active staff user holding ``permission`` (an API key holds no model permission)."""
    if who is None or who == BOOTSTRAP or isinstance(who, ApiKey):
        return False
    return bool(who.is_active and who.is_staff and who.has_perm(permission))


def may_add_jobs(who) -> bool:
    """Create a job (the admin's add permission). Named API keys read and trigger, never write;
    the JOBS_SECRET_KEY bootstrap key may, as it may do everything."""
    return who == BOOTSTRAP or _staff_with(who, ADD_JOB)


def deletable_jobs(who) -> QuerySet[Job]:
    """The jobs ``who`` may delete: the admin's rule, the delete permission on a job they may change."""
    if who == BOOTSTRAP or _staff_with(who, DELETE_JOB):
        return allowed_jobs(who, CHANGE)
    return Job.objects.none()


def may_handlers(who, action: str) -> bool:
    """Whether ``who`` may ``action`` ("view", "add", "change", "delete") webhook handlers: the
    model permissions, as in the admin (handlers have no operator groups; API keys none of it)."""
    return who == BOOTSTRAP or _staff_with(who, HANDLER_PERMISSIONS[action])


def may_manage_schedule(user) -> bool:
    return bool(user and user.is_active and user.is_staff and user.has_perm(MANAGE_SCHEDULE))


def refusal_reason(who, action: str) -> str:
    """Words for the audit log and the answer when ``who`` is refused ``action`` on a job."""
    if isinstance(who, ApiKey):
        return "job outside this API key's scope"
    if who is not None and who.is_active and who.has_perm(PERMISSIONS[action]):
        return "job limited to other operator groups"
    return f"missing permission {PERMISSIONS[action]}"


def _key_scope(key: ApiKey, jobs: QuerySet[Job]) -> QuerySet[Job]:
    """A key with no jobs and no groups may trigger every job; otherwise the jobs it names and
    the jobs limited to one of its groups."""
    named = ApiKey.jobs.through.objects.filter(apikey=key)
    groups = ApiKey.groups.through.objects.filter(apikey=key)
    if not named.exists() and not groups.exists():
        return jobs
    in_groups = JobOperatorGroup.objects.filter(job=OuterRef("pk"), group__in=groups.values("group"))
    return jobs.filter(Q(pk__in=named.values("job")) | Exists(in_groups))
