"""Curating the dataset: review, find likely mislabels, relabel, export."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.http import (
    FileResponse,
    Http404,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from audit.models import AuditEvent
from classifier import preprocessing
from classifier.preprocessing import CANVAS_STROKE_WIDTH, MAX_IMAGE_BYTES, PreprocessingError
from collector import abuse, dataset, exports, tasks
from collector.curation import (
    STATUS_EVENTS,
    DigitFilter,
    EstimatedCountPaginator,
    HasStrokesFilter,
    ModelDisagreesFilter,
    SourceFilter,
    record,
    relabel_action,
)
from collector.models import (
    DatasetExport,
    Drawing,
    InvalidDrawing,
    NewDrawing,
    StorageUnavailable,
    validate_png,
)


class DrawingUploadForm(forms.ModelForm):
    """Staff add a drawing as contributors do: a PNG and its label, checked and
    stored by ``Drawing.objects.add`` (same preprocessing, split, file and row)."""

    upload = forms.FileField(
        label="Image",
        help_text="One digit: a canvas drawing, a scan or a photo (PNG, JPEG, WebP, BMP or "
        "GIF; stored as PNG).",
    )

    class Meta:
        model = Drawing
        fields = ("label", "status")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        status = self.fields["status"]
        status.required = False
        status.choices = [("", "as for contributions (pending, or DIGITS_AUTO_APPROVE)"),
                          *Drawing.Status.choices]  # fmt: skip
        status.initial = ""

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("upload")
        if upload is None or self.errors:
            return cleaned
        if upload.size > MAX_IMAGE_BYTES:
            raise forms.ValidationError(
                f"The file is over {MAX_IMAGE_BYTES // (1024 * 1024)} MB.", code="too_large"
            )
        try:
            # A scan or a photo may come as JPEG, WebP, BMP or GIF: stored as a PNG.
            data = preprocessing.as_png(upload.read())
            model_input = validate_png(data)
        except (PreprocessingError, InvalidDrawing) as exc:
            self.add_error("upload", str(exc))
            return cleaned
        try:  # stored here, so that a full disk is a form error rather than a 500
            self.stored, self.created = Drawing.objects.add(
                NewDrawing(
                    data,
                    cleaned["label"],
                    source="admin",
                    status=cleaned.get("status") or None,
                    contributor=self.user,
                    prediction=dataset.predict_quietly(model_input),
                    model_input=model_input,
                )
            )
        except StorageUnavailable as exc:
            self.add_error(None, str(exc))
        return cleaned


@admin.register(Drawing)
class DrawingAdmin(admin.ModelAdmin):
    list_display = (
        "thumbnail",
        "label",
        "model_guess",
        "split",
        "status",
        "source",
        "sender",
        "created_at",
    )
    list_display_links = ("thumbnail", "label")
    list_filter = ("status", DigitFilter, "split", SourceFilter, HasStrokesFilter,
                   ModelDisagreesFilter)  # fmt: skip
    # A drawing's sha256, a writer or a sender, matched exactly along their indexes
    # (a substring or case-blind search reads every row): get_search_results.
    search_fields = ("sha256", "writer", "client")
    paginator = EstimatedCountPaginator
    show_full_result_count = False  # "of N in all" would count the whole table again
    list_per_page = 50
    readonly_fields = (
        "preview",
        "pen",
        "sha256",
        "split",
        "source",
        "writer",
        "predicted_label",
        "predicted_confidence",
        "model_version",
        "contributor",
        "session_key",
        "sender",
        "created_at",
        "approved_at",
        "image_file",
    )
    fields = ("preview", "label", "status", *readonly_fields[1:])
    add_fields = ("upload", "label", "status")
    actions = [
        "approve",
        "reject",
        "reject_pending_from_senders",
        *[relabel_action(d) for d in range(10)],
    ]
    change_list_template = "admin/collector/drawing/change_list.html"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:  # adding: a PNG and a label, stored like a contribution
            kwargs["form"] = DrawingUploadForm
            kwargs["fields"] = ("label", "status")
            form = super().get_form(request, obj, change=change, **kwargs)
            return type(form.__name__, (form,), {"user": request.user})
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_form(self, request, form, change):
        if change:
            return super().save_form(request, form, change)
        if not form.created:
            self.message_user(
                request,
                f"This picture is already in the dataset (labelled {form.stored.label}); "
                "nothing new was stored.",
                level=messages.WARNING,
            )
            request.digits_already_stored = form.stored
        return form.stored

    def response_add(self, request, obj, post_url_continue=None):
        """A picture already stored was not added: the warning alone, on its page
        (Django's "was added successfully" would contradict it)."""
        stored = getattr(request, "digits_already_stored", None)
        if stored is not None:
            return HttpResponseRedirect(reverse("admin:collector_drawing_change", args=[stored.pk]))
        return super().response_add(request, obj, post_url_continue)

    def save_model(self, request, obj, form, change):
        if change:
            with transaction.atomic():
                if "label" in form.changed_data:  # the split's per-label counts move too
                    label, obj.label = obj.label, form.initial["label"]
                    obj.relabel(label)
                    record(request, AuditEvent.Action.RELABELLED, [obj], label=label,
                            was=form.initial["label"])  # fmt: skip
                if "status" in form.changed_data:
                    approved = obj.status == Drawing.Status.APPROVED
                    obj.approved_at = timezone.now() if approved else None
                    if obj.status in STATUS_EVENTS:
                        record(request, STATUS_EVENTS[obj.status], [obj])
                super().save_model(request, obj, form, change)
        # Added drawings were stored, file and row together, by save_form.

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(sha256=term) | Q(writer=term) | Q(client=term)), False

    def get_ordering(self, request):
        # Likely mislabels: the most confident disagreements are the likeliest.
        if request.GET.get(ModelDisagreesFilter.parameter_name) == "yes":
            return ["-predicted_confidence", "-id"]
        return super().get_ordering(request)

    @admin.display(description="drawing")
    def thumbnail(self, obj: Drawing):
        return format_html(
            '<img src="{}" width="56" height="56" alt="{}" style="background:#fff;'
            'border:1px solid #d9dee5;border-radius:4px">',
            reverse("drawing-image", args=[obj.sha256]),
            obj.label,
        )

    @admin.display(description="drawing")
    def preview(self, obj: Drawing):
        return format_html(
            '<img src="{}" width="256" height="256" alt="{}" style="background:#fff;'
            'border:1px solid #d9dee5;border-radius:6px">',
            reverse("drawing-image", args=[obj.sha256]),
            obj.label,
        )

    @admin.display(description="pen")
    def pen(self, obj: Drawing):
        """The strokes replayed in their order, at an even pace along the path (their
        timing is never read), or stepped through point by point."""
        if not obj.strokes:
            return "No strokes: an upload, a scan or an import."
        paths = [[point[:2] for point in stroke] for stroke in obj.strokes]
        total = sum(len(p) for p in paths)
        return format_html(
            '<div class="pen-replay"><canvas width="256" height="256" data-strokes="{}" '
            'data-width="{}" role="img" aria-label="the drawing\'s strokes, {} of them" '
            'style="background:#fff;border:1px solid #d9dee5;border-radius:6px"></canvas>'
            '<div><button type="button" class="button">Replay</button> '
            '<input type="range" min="0" max="{}" value="{}" aria-label="points drawn"> '
            '<span aria-live="polite"></span></div></div>',
            json.dumps(paths), CANVAS_STROKE_WIDTH, len(paths), total, total,
        )  # fmt: skip

    class Media:
        js = ("digits/admin-replay.js",)

    @admin.display(description="image file")
    def image_file(self, obj: Drawing):
        """The stored PNG, through the view that serves drawings (media is not served)."""
        if not obj.sha256:
            return "—"
        url = reverse("drawing-image", args=[obj.sha256])
        return format_html('<a href="{}">{}</a>', url, obj.image.name or url)

    @admin.display(description="model's guess", ordering="predicted_confidence")
    def model_guess(self, obj: Drawing):
        if obj.predicted_label is None:
            return "—"
        mark = " ⚠" if obj.model_disagrees else ""
        return f"{obj.predicted_label} ({obj.predicted_confidence:.0%}){mark}"

    @admin.display(description="sent by", ordering="client")
    def sender(self, obj: Drawing):
        """The client (a keyed hash of its address, or a user), linking to all it sent."""
        if not obj.client:
            return "—"
        if obj.client.startswith("user:") and obj.contributor_id:
            shown = f"user {obj.contributor}"
        else:
            shown = obj.client.removeprefix("addr:")[:8]
        return format_html('<a href="?q={}" title="{}">{}</a>', obj.client, obj.client, shown)

    @admin.action(description="Reject everything pending from the same senders")
    def reject_pending_from_senders(self, request, queryset):
        senders = set(queryset.values_list("client", flat=True)) - {""}
        pending = list(Drawing.objects.filter(client__in=senders, status=Drawing.Status.PENDING)
                       .values_list("pk", flat=True))  # fmt: skip
        n = abuse.reject_pending_from(senders)
        record(request, AuditEvent.Action.REJECTED, pending, senders=len(senders))
        self.message_user(
            request,
            f"Rejected {n} pending drawing(s) from {len(senders)} sender(s)."
            if senders
            else "None of the selected drawings came through the API; nothing rejected.",
        )

    @admin.action(description="Approve (use for training)")
    def approve(self, request, queryset):
        with transaction.atomic():
            changing = queryset.exclude(status=Drawing.Status.APPROVED)
            ids = list(changing.values_list("pk", flat=True))
            n = Drawing.objects.filter(pk__in=ids).update(
                status=Drawing.Status.APPROVED, approved_at=Now()
            )
            record(request, AuditEvent.Action.APPROVED, ids)
        self.message_user(request, f"Approved {n} drawing(s).")

    @admin.action(description="Reject (never used)")
    def reject(self, request, queryset):
        with transaction.atomic():
            ids = list(
                queryset.exclude(status=Drawing.Status.REJECTED).values_list("pk", flat=True)
            )
            n = Drawing.objects.filter(pk__in=ids).update(
                status=Drawing.Status.REJECTED, approved_at=None
            )
            record(request, AuditEvent.Action.REJECTED, ids)
        self.message_user(request, f"Rejected {n} drawing(s).")

    def delete_model(self, request, obj):
        with transaction.atomic():
            record(request, AuditEvent.Action.DRAWINGS_DELETED, [obj], labels={obj.pk: obj.label})
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            labels = dict(queryset.values_list("pk", "label"))
            record(request, AuditEvent.Action.DRAWINGS_DELETED, list(labels),
                    labels=dict(list(labels.items())[:1000]))  # fmt: skip
            super().delete_queryset(request, queryset)

    def get_urls(self):
        return [
            path(
                "export/<str:fmt>/",
                self.admin_site.admin_view(self.export_view),
                name="collector_drawing_export",
            ),
            *super().get_urls(),
        ]

    def export_view(self, request, fmt: str):
        """Queue an export (POST) and follow it on the exports page: a large dataset
        takes longer to write than a request may take."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            export = tasks.start_export(fmt, request.user)
        except exports.ExportError as exc:
            return HttpResponseBadRequest(str(exc))
        self.message_user(
            request,
            f"Export {export.pk} ({fmt}) is being built; it appears here with a download link.",
        )
        return HttpResponseRedirect(reverse("admin:collector_datasetexport_changelist"))

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "export_formats": exports.described()}
        return super().changelist_view(request, extra_context)


@admin.register(DatasetExport)
class DatasetExportAdmin(admin.ModelAdmin):
    """Exports staff asked for, newest first, with their progress and, once ready, a
    download link. The page reloads itself while one is being built."""

    list_display = ("id", "fmt", "status", "progress", "drawings", "file_size", "download",
                    "requested_by", "created_at")  # fmt: skip
    list_display_links = None
    change_list_template = "admin/collector/datasetexport/change_list.html"

    def has_add_permission(self, request):
        return False  # started from the drawings page, one button per format

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="progress")
    def progress(self, obj: DatasetExport) -> str:
        if obj.status == DatasetExport.Status.FAILED:
            return obj.error[:200]
        if obj.status in (DatasetExport.Status.QUEUED, DatasetExport.Status.RUNNING):
            return f"{obj.done:,} of {obj.total:,} drawings read" if obj.total else obj.status
        return "done"

    @admin.display(description="size")
    def file_size(self, obj: DatasetExport) -> str:
        return filesizeformat(obj.size) if obj.size else "—"

    @admin.display(description="file")
    def download(self, obj: DatasetExport):
        if obj.status != DatasetExport.Status.READY:
            return "—"
        url = reverse("admin:collector_datasetexport_download", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.file.name.rsplit("/", 1)[-1])

    def get_urls(self):
        return [
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="collector_datasetexport_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        export = DatasetExport.objects.filter(pk=pk, status=DatasetExport.Status.READY).first()
        if export is None:
            raise Http404("No such export, or it is not ready yet.")
        try:
            handle = export.file.open("rb")
        except OSError:
            raise Http404("The export file is gone; start another export.") from None
        return FileResponse(
            handle, as_attachment=True, filename=export.file.name.rsplit("/", 1)[-1]
        )

    def changelist_view(self, request, extra_context=None):
        building = DatasetExport.objects.filter(
            status__in=[DatasetExport.Status.QUEUED, DatasetExport.Status.RUNNING]
        ).exists()
        return super().changelist_view(request, {**(extra_context or {}), "building": building})


from collector import import_admin  # noqa: E402, F401  (the import page registers itself)
