from django.contrib import admin

from classifier.models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "version",
        "architecture",
        "is_active",
        "mnist_accuracy",
        "pendigits_accuracy",
        "created_at",
    )
    list_filter = ("is_active", "architecture")
    readonly_fields = (
        "version",
        "architecture",
        "tflite",
        "keras",
        "metrics",
        "created_at",
        "is_active",
    )
    actions = ["promote_selected"]

    @admin.display(description="MNIST test")
    def mnist_accuracy(self, obj: ModelVersion) -> str:
        value = obj.test_accuracy("mnist-test")
        return "—" if value is None else f"{value * 100:.2f}%"

    @admin.display(description="pen digits (unseen writers)")
    def pendigits_accuracy(self, obj: ModelVersion) -> str:
        value = obj.test_accuracy("pendigits")
        return "—" if value is None else f"{value * 100:.2f}%"

    @admin.action(description="Make the selected version active")
    def promote_selected(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to make active.", level="error")
            return
        version = queryset.get()
        version.promote()
        self.message_user(request, f"Version {version.version} is now active.")
