"""``manage.py create_api_key NAME [--job X ...] [--group G ...] [--expires-in-days N]``: a named
API key in one step. The key is printed once, with the curl line that uses it; only its digest is kept."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from jobs.admin.api_keys import curl_line
from jobs.models import ApiKey, Job
from jobs.permissions.api_keys import api_key_create


class Command(BaseCommand):
    help = "Create a named API key for the HTTP trigger API and print it once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who will use the key, e.g. k8s-cronjob-billing.")
        parser.add_argument("--job", action="append", default=[], help="A job the key may trigger (repeatable).")
        parser.add_argument(
            "--group", action="append", default=[], help="The key may trigger jobs limited to this group (repeatable)."
        )
        parser.add_argument("--expires-in-days", type=int, default=None, help="Refused after this many days.")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Base URL shown in the curl line.")

    def handle(self, *args, name, job, group, expires_in_days, url, **options):
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(f"an API key named {name!r} exists; choose another name (or revoke it in the admin)")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be 1 or more")
        jobs = self._named(Job, job, "job")
        groups = self._named(Group, group, "group")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        key, token = api_key_create(name=name, jobs=jobs, groups=groups, expires_at=expires_at)
        scope = ", ".join([j.name for j in jobs] + [f"group {g.name}" for g in groups]) or "every job"
        self.stdout.write(self.style.SUCCESS(f"API key {key.name} (#{key.pk}) created; it may trigger: {scope}."))
        if expires_at:
            self.stdout.write(f"Expires {expires_at:%Y-%m-%d %H:%M} UTC.")
        self.stdout.write("The key (shown only now; only its digest is stored):")
        self.stdout.write(token)
        self.stdout.write("Use it:")
        self.stdout.write(curl_line(token, jobs[0].name if jobs else "generate-charges", url.rstrip("/")))

    def _named(self, model, names: list[str], what: str) -> list:
        found = {row.name: row for row in model.objects.filter(name__in=names)}
        missing = [n for n in names if n not in found]
        if missing:
            raise CommandError(f"no such {what}: {', '.join(missing)}")
        return [found[n] for n in dict.fromkeys(names)]
