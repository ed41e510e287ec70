"""What staff do to drawings in the admin's list, beyond one form: the filters
that find them and the bulk changes, each written to the history
(``audit.AuditEvent``) with who did it and the filters that picked the drawings."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction
from django.db.models import F, Q

from audit.models import AuditEvent
from collector.models import Drawing

# A drawing's new status, as the history names it.
STATUS_EVENTS = {
    Drawing.Status.APPROVED: AuditEvent.Action.APPROVED,
    Drawing.Status.REJECTED: AuditEvent.Action.REJECTED,
}


class HasStrokesFilter(admin.SimpleListFilter):
    title = "pen strokes"
    parameter_name = "strokes"

    def lookups(self, request, model_admin):
        return [("yes", "With strokes"), ("no", "Without (uploads, scans, imports)")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(strokes__isnull=self.value() == "no")
        return queryset


class ModelDisagreesFilter(admin.SimpleListFilter):
    title = "model disagrees with the label"
    parameter_name = "disagrees"

    def lookups(self, request, model_admin):
        return [("yes", "Yes (likely mislabels first)"), ("no", "No")]

    def queryset(self, request, queryset):
        disagrees = Q(predicted_label__isnull=False) & ~Q(predicted_label=F("label"))
        if self.value() == "yes":
            return queryset.filter(disagrees)
        if self.value() == "no":
            return queryset.exclude(disagrees)
        return queryset


def record(request, action: str, drawings, **details) -> None:
    """One history event for what staff did to ``drawings`` (rows or ids), with the
    list's filters that picked them; nothing when none changed."""
    ids = sorted(d if isinstance(d, int) else d.pk for d in drawings)
    if ids:
        subject = f"drawing {ids[0]}" if len(ids) == 1 else f"{len(ids)} drawings"
        filters = request.GET.urlencode()
        AuditEvent.record(action, subject, by=request.user, ids=ids, count=len(ids),
                          **({"filters": filters} if filters else {}), **details)  # fmt: skip


def relabel_action(digit: int):
    def action(modeladmin, request, queryset):
        with transaction.atomic():
            changed = [
                d for d in queryset.select_for_update().exclude(label=digit) if d.relabel(digit)
            ]
            record(request, AuditEvent.Action.RELABELLED, changed, label=digit)
        modeladmin.message_user(request, f"Relabelled {len(changed)} drawing(s) as {digit}.")

    action.__name__ = f"relabel_as_{digit}"
    action.short_description = f"Relabel as {digit} (keeps the split)"
    return action
