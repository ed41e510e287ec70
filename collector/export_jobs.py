"""An export staff asked for: built by a background worker (``collector.exports``),
then downloaded from the admin."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from collector.job_lifecycle import JobLifecycle


def export_path(instance: DatasetExport, filename: str) -> str:
    return f"exports/{instance.pk}/{filename}"


class DatasetExport(JobLifecycle, models.Model):
    """A dataset export staff asked for: built by a background worker (a large
    dataset takes longer than a request may), then downloaded from the admin."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        READY = "ready"
        FAILED = "failed"

    fmt = models.CharField("format", max_length=16)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0, help_text="drawings read so far")
    total = models.PositiveIntegerField(default=0, help_text="drawings to read")
    drawings = models.PositiveIntegerField(default=0, help_text="drawings in the file")
    file = models.FileField(upload_to=export_path, max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "collector"
        ordering = ["-created_at", "-id"]
        verbose_name = "dataset export"

    def __str__(self) -> str:
        return f"export {self.pk} ({self.fmt}, {self.status})"

    def finish(self, *, drawings: int) -> None:
        """Ready: its file (already saved to storage) can be downloaded."""
        self._end(self.Status.READY, file=self.file.name, size=self.file.size, drawings=drawings)
