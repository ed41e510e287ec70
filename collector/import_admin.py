"""The admin's import page: staff upload a file, a background worker imports it,
and the list shows its progress and then what was added, already there or
refused (and why)."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction
from django.utils.html import format_html, format_html_join

from collector import tasks
from collector.models import DatasetImport


@admin.register(DatasetImport)
class DatasetImportAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "file_name", "status", "progress", "added", "skipped",
                    "refused", "requested_by", "created_at")  # fmt: skip
    list_display_links = ("id",)
    fields = ("file", "kind", "drawing_status")
    readonly_fields = ()
    change_list_template = "admin/collector/datasetimport/change_list.html"

    def has_change_permission(self, request, obj=None):
        return False  # an import is started, then only watched

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.fields
        return ("kind", "file_name", "status", "progress", "report", "requested_by",
                "created_at", "finished_at")  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        obj.requested_by = request.user
        super().save_model(request, obj, form, change)
        transaction.on_commit(lambda: tasks.start_import(obj.pk))

    def delete_model(self, request, obj):
        obj.file.delete(save=False)  # the uploaded file goes with its record
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for job in queryset:
            job.file.delete(save=False)
        super().delete_queryset(request, queryset)

    def message_user(self, request, message, *args, **kwargs):
        if "was added successfully" in str(message):
            message = "The import is queued: a background worker reads it; this list follows it."
        super().message_user(request, message, *args, **kwargs)

    @admin.display(description="file")
    def file_name(self, obj: DatasetImport) -> str:
        return obj.file.name.rsplit("/", 1)[-1] if obj.file else "—"

    @admin.display(description="progress")
    def progress(self, obj: DatasetImport) -> str:
        if obj.status == DatasetImport.Status.FAILED:
            return obj.error[:300]
        if obj.status == DatasetImport.Status.RUNNING and obj.total:
            return f"{obj.done:,} of {obj.total:,} drawings read"
        if obj.status == DatasetImport.Status.DONE:
            return f"done: {obj.total:,} drawings read"
        return obj.status

    @admin.display(description="report")
    def report(self, obj: DatasetImport):
        if obj.status != DatasetImport.Status.DONE:
            return self.progress(obj)
        reasons = format_html_join(
            "", "<li>{}× {}</li>", sorted(((n, r) for r, n in obj.refusals.items()), reverse=True)
        )
        return format_html(
            "{} added, {} already in the dataset, {} refused{}",
            obj.added, obj.skipped, obj.refused,
            format_html("<ul>{}</ul>", reasons) if obj.refusals else "",
        )  # fmt: skip

    def changelist_view(self, request, extra_context=None):
        busy = DatasetImport.objects.filter(
            status__in=[DatasetImport.Status.QUEUED, DatasetImport.Status.RUNNING]
        ).exists()
        return super().changelist_view(request, {**(extra_context or {}), "building": busy})
