"""What staff do to drawings in the admin's list, beyond one form: the filters
that find them (none of which scans the table to draw itself), how the list is
counted at a million drawings, and the bulk changes, each written to the history
(``audit.AuditEvent``) with who did it and the filters that picked the drawings."""

from __future__ import annotations

import json
from functools import cached_property

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.db.models import F, Q

from audit.models import AuditEvent
from collector import counts
from collector.models import Drawing

# Lists longer than this are counted by the planner's estimate on PostgreSQL.
ESTIMATE_ABOVE = 50_000

# A drawing's new status, as the history names it.
STATUS_EVENTS = {
    Drawing.Status.APPROVED: AuditEvent.Action.APPROVED,
    Drawing.Status.REJECTED: AuditEvent.Action.REJECTED,
}


class DigitFilter(admin.SimpleListFilter):
    """The digits 0-9 as they are: the built-in filter asked the database for the
    distinct labels on every page, a scan of the whole table."""

    title = "label"
    parameter_name = "label__exact"

    def lookups(self, request, model_admin):
        return [(str(d), str(d)) for d in range(10)]

    def queryset(self, request, queryset):
        return queryset.filter(label=self.value()) if self.value() else queryset


class SourceFilter(admin.SimpleListFilter):
    """Where drawings came from, read from the counts the database keeps
    (``collector.counts``), not from a DISTINCT over every drawing."""

    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return [(source, source) for source in counts.sources()]

    def queryset(self, request, queryset):
        return queryset.filter(source=self.value()) if self.value() else queryset


class EstimatedCountPaginator(Paginator):
    """The admin list's paginator. On PostgreSQL a list of more than
    ``ESTIMATE_ABOVE`` drawings is counted by the planner's estimate (its row count
    for the list's own query, a millisecond) instead of ``COUNT(*)`` (a scan of
    every matching row: a second at a million drawings); a smaller one is counted
    exactly."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if connection.vendor == "postgresql" and hasattr(queryset, "query"):
            sql, params = queryset.order_by().values("pk").query.sql_with_params()
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
                plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            estimate = int(plan[0]["Plan"]["Plan Rows"])
            if estimate > ESTIMATE_ABOVE:
                return estimate
        return super().count


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
            changed = Drawing.relabel_all(queryset, digit)
            record(request, AuditEvent.Action.RELABELLED, changed, label=digit)
        modeladmin.message_user(request, f"Relabelled {len(changed)} drawing(s) as {digit}.")

    action.__name__ = f"relabel_as_{digit}"
    action.short_description = f"Relabel as {digit} (keeps the split)"
    return action
