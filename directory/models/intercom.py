"""What intercom-sync last pushed for each member, so that only changed contacts are pushed."""

from __future__ import annotations

from django.db import models

from .members import Member


class IntercomContact(models.Model):
    member = models.OneToOneField(Member, on_delete=models.PROTECT, related_name="intercom_contact")
    contact_id = models.CharField(max_length=64, help_text="Intercom's id of the contact.")
    pushed_hash = models.CharField(max_length=64, help_text="SHA-256 of the fields and tag last pushed.")
    pushed_tag = models.CharField(max_length=20, blank=True, help_text="The status tag last attached.")
    pushed_at = models.DateTimeField()

    class Meta:
        ordering = ["member_id"]
        constraints = [models.UniqueConstraint(fields=["contact_id"], name="directory_intercomcontact_contact_unique")]

    def __str__(self) -> str:
        return self.contact_id
