"""The model registry: every trained model version, and which one is serving."""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q


def artifact_path(instance: ModelVersion, filename: str) -> str:
    return f"models/v{instance.version:04d}/{filename}"


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"
        REJECTED = "rejected"

    version = models.PositiveIntegerField(unique=True)
    architecture = models.CharField(max_length=64)
    tflite = models.FileField(upload_to=artifact_path, max_length=255, help_text="served artifact")
    keras = models.FileField(upload_to=artifact_path, max_length=255, blank=True)
    plots = models.JSONField(default=list, blank=True, help_text="storage names of report plots")
    metrics = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.CANDIDATE, db_index=True
    )
    rejection_reasons = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            # At most one version serves at a time; the database enforces it.
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="active"), name="one_active_model_version"
            )
        ]

    def __str__(self) -> str:
        return f"v{self.version} ({self.architecture}, {self.status})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def promote(self, *, by=None, reason: str = "") -> Promotion:
        """Make this the serving version (the previous one retires) and record who and why.

        Web processes notice within ``DIGITS_MODEL_CHECK_SECONDS`` and swap.
        """
        with transaction.atomic():
            previous = (
                ModelVersion.objects.select_for_update()
                .filter(status=self.Status.ACTIVE)
                .exclude(pk=self.pk)
                .first()
            )
            if previous is not None:
                ModelVersion.objects.filter(pk=previous.pk).update(status=self.Status.RETIRED)
            ModelVersion.objects.filter(pk=self.pk).update(status=self.Status.ACTIVE)
            self.status = self.Status.ACTIVE
            return Promotion.objects.create(
                version=self,
                previous=previous,
                promoted_by=by if getattr(by, "is_authenticated", False) else None,
                reason=reason,
            )

    def reject(self, reasons: list[str]) -> None:
        self.status = self.Status.REJECTED
        self.rejection_reasons = list(reasons)
        self.save(update_fields=["status", "rejection_reasons"])

    def test_accuracy(self, name: str) -> float | None:
        report = (self.metrics or {}).get("tests", {}).get(name)
        return None if report is None else report.get("accuracy")

    @classmethod
    def active(cls) -> ModelVersion | None:
        return cls.objects.filter(status=cls.Status.ACTIVE).first()

    @classmethod
    def next_version(cls) -> int:
        return (cls.objects.aggregate(m=models.Max("version"))["m"] or 0) + 1


class Promotion(models.Model):
    """The audit trail: every change of the serving version."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="promotions")
    previous = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        before = f"v{self.previous.version}" if self.previous else "nothing"
        return f"{before} → v{self.version.version}: {self.reason}"
