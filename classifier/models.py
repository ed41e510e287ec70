"""The model registry: every trained model version, and which one is serving."""

from __future__ import annotations

from django.db import models, transaction
from django.db.models import Q


def artifact_path(instance: ModelVersion, filename: str) -> str:
    return f"models/v{instance.version:04d}/{filename}"


class ModelVersion(models.Model):
    version = models.PositiveIntegerField(unique=True)
    architecture = models.CharField(max_length=64)
    tflite = models.FileField(upload_to=artifact_path, max_length=255, help_text="served artifact")
    keras = models.FileField(upload_to=artifact_path, max_length=255, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            # At most one version serves at a time; the database enforces it.
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="one_active_model_version"
            )
        ]

    def __str__(self) -> str:
        return f"v{self.version} ({self.architecture}){' active' if self.is_active else ''}"

    def promote(self) -> None:
        """Make this the serving version; web processes pick it up within seconds."""
        with transaction.atomic():
            ModelVersion.objects.filter(is_active=True).exclude(pk=self.pk).update(is_active=False)
            ModelVersion.objects.filter(pk=self.pk).update(is_active=True)
        self.is_active = True

    def test_accuracy(self, name: str) -> float | None:
        report = (self.metrics or {}).get("tests", {}).get(name)
        return None if report is None else report.get("accuracy")

    @classmethod
    def next_version(cls) -> int:
        return (cls.objects.aggregate(m=models.Max("version"))["m"] or 0) + 1
