"""The history in the admin: read by staff, written only by the site itself."""

from __future__ import annotations

from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "subject", "actor_name", "reason")
    list_filter = ("action", "created_at")
    search_fields = ("subject", "actor_name", "reason")
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "action", "subject", "actor_name", "reason", "details")
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
