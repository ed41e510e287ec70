"""The append-only history: promotions, rollbacks, gate overrides, deletions,
relabels, bulk curation and imports, each with who, when and why.

An event names what it mentions in words and numbers ("model version 3",
"drawing 1204") instead of pointing at its row, so deleting a version, a drawing
or a user never takes its history along (Django's delete page would have listed
the events as going with it). Events are written once and never changed or
deleted: the model, its query sets and the admin all refuse to, and the admin
shows the history read-only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

# At most this many ids are kept in a bulk action's details (its count is exact).
MAX_IDS = 1000


class AppendOnly(PermissionError):
    """Something tried to change or delete recorded history."""


class EventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("The history is append-only: events are never changed.")

    def delete(self):
        raise AppendOnly("The history is append-only: events are never deleted.")


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        PROMOTED = "promoted", "model promoted"
        ROLLED_BACK = "rolled_back", "rolled back"
        GATE_OVERRIDDEN = "gate_overridden", "served against the gate"
        VERSION_DELETED = "version_deleted", "model version deleted"
        RELABELLED = "relabelled", "drawings relabelled"
        APPROVED = "approved", "drawings approved"
        REJECTED = "rejected", "drawings rejected"
        DRAWINGS_DELETED = "drawings_deleted", "drawings deleted"
        IMPORTED = "imported", "drawings imported"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    # Who: the account while it exists, and its name for ever (a deleted account
    # leaves the name); empty for the system itself (a run's own promotion).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    actor_name = models.CharField(max_length=150, blank=True)
    subject = models.CharField(max_length=200, help_text="what it changed, in words")
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "history event"

    def __str__(self) -> str:
        who = self.actor_name or "the system"
        return f"{self.get_action_display()}: {self.subject} (by {who})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnly("The history is append-only: events are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("The history is append-only: events are never deleted.")

    @classmethod
    def record(
        cls, action: str, subject: str, *, by=None, reason: str = "", **details
    ) -> AuditEvent:
        """Write one event. ``by``: the request's user (anonymous or None: the
        system); ``details``: JSON-able facts (ids are capped at ``MAX_IDS``)."""
        user = by if getattr(by, "is_authenticated", False) else None
        if isinstance(details.get("ids"), list | tuple):
            details["ids"] = list(details["ids"])[:MAX_IDS]
        return cls.objects.create(
            action=action,
            subject=subject[:200],
            actor=user,
            actor_name=user.get_username() if user else "",
            reason=reason or "",
            details=details,
        )
