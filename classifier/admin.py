import json

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from classifier.models import ArtifactError, ModelVersion, Promotion


class PromotionInline(admin.TabularInline):
    model = Promotion
    fk_name = "version"
    extra = 0
    can_delete = False
    readonly_fields = ("previous", "promoted_by", "reason", "created_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "version",
        "status",
        "serving",
        "architecture",
        "mnist_accuracy",
        "pendigits_accuracy",
        "created_at",
    )
    list_filter = ("status", "architecture")
    readonly_fields = (
        "version",
        "architecture",
        "status",
        "serving",
        "serving_error",
        "serving_error_at",
        "downloads",
        "tflite_sha256",
        "report_plots",
        "rejection_reasons",
        "metrics_json",
        "created_at",
    )
    exclude = ("plots", "tflite", "keras", "metrics")
    inlines = [PromotionInline]
    actions = ["promote_selected"]

    def has_add_permission(self, request):
        return False  # versions come from training runs and the registry, not forms

    @admin.display(description="MNIST test")
    def mnist_accuracy(self, obj: ModelVersion) -> str:
        value = obj.test_accuracy("mnist-test")
        return "—" if value is None else f"{value * 100:.2f}%"

    @admin.display(description="pen digits (unseen writers)")
    def pendigits_accuracy(self, obj: ModelVersion) -> str:
        value = obj.test_accuracy("pendigits")
        return "—" if value is None else f"{value * 100:.2f}%"

    @admin.display(description="serving")
    def serving(self, obj: ModelVersion):
        if obj.serving_error:  # the reason is in the banner, the tooltip and the version's page
            return format_html(
                '<strong style="color:#ba2121;white-space:nowrap" title="{}">⚠ cannot be served'
                "</strong>",
                obj.serving_error,
            )
        return "serving" if obj.is_active else "—"

    def changelist_view(self, request, extra_context=None):
        problem = ModelVersion.serving_problem()
        if problem:
            self.message_user(request, problem, level=messages.ERROR)
        return super().changelist_view(request, extra_context)

    @admin.display(description="metrics")
    def metrics_json(self, obj: ModelVersion):
        return format_html(
            "<details><summary>metrics.json ({} keys)</summary>"
            '<pre style="max-height:40em;overflow:auto">{}</pre></details>',
            len(obj.metrics or {}),
            json.dumps(obj.metrics, indent=2),
        )

    @admin.display(description="artifacts")
    def downloads(self, obj: ModelVersion):
        links = [(reverse("model-file", args=[obj.version, "model.tflite"]), "model.tflite")]
        if obj.keras:
            links.append((reverse("model-file", args=[obj.version, "model.keras"]), "model.keras"))
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    @admin.display(description="report")
    def report_plots(self, obj: ModelVersion):
        if not obj.plots:
            return "—"
        return format_html_join(
            "",
            '<figure style="margin:0 0 1rem"><img src="{}" style="max-width:720px;'
            'border:1px solid #ddd"><figcaption>{}</figcaption></figure>',
            (
                (
                    reverse("model-file", args=[obj.version, name.rsplit("/", 1)[-1]]),
                    name.rsplit("/", 1)[-1],
                )
                for name in obj.plots
            ),
        ) or format_html("—")

    @admin.action(description="Make the selected version active")
    def promote_selected(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to make active.", level="error")
            return
        version = queryset.get()
        try:
            version.promote(by=request.user, reason="promoted by hand in the admin")
        except ArtifactError as exc:
            self.message_user(request, f"Nothing changed. {exc}", level=messages.ERROR)
            return
        self.message_user(request, f"Version {version.version} is now active.")
