"""An import staff started from the admin: the uploaded file, the background
worker's progress through it, and its report (added, already there, refused and
why). The reading and storing is ``collector.imports``'s, as for
``manage.py import_drawings``."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from collector.job_lifecycle import JobLifecycle


def import_path(instance: DatasetImport, filename: str) -> str:
    return f"imports/{timezone.now():%Y%m%d-%H%M%S}/{filename}"


class DatasetImport(JobLifecycle, models.Model):
    class Kind(models.TextChoices):
        ZIP = "zip", "zip export of Digits (labels, splits, statuses and strokes kept)"
        NDJSON = "ndjson", "ndjson strokes (Digits' export, or Quick, Draw!'s layout)"
        FOLDER = "folder", "a folder as a zip: one sub-folder per digit (7/any.png)"
        KAGGLE = "kaggle", "Kaggle digit-recognizer train.csv (label, pixel0…pixel783)"
        PENDIGITS = "pendigits", "UNIPEN pen digits (.tra, gzipped or not)"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    kind = models.CharField("format", max_length=16, choices=Kind.choices)
    file = models.FileField(upload_to=import_path, max_length=255)
    drawing_status = models.CharField(
        "imported drawings are",
        max_length=16,
        blank=True,
        choices=[
            ("", "as the file says (zip, ndjson), else approved"),
            ("approved", "approved"),
            ("pending", "pending review"),
        ],
        default="",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0, help_text="drawings read so far")
    total = models.PositiveIntegerField(default=0, help_text="drawings in the file")
    added = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="already in the dataset")
    refused = models.PositiveIntegerField(default=0)
    refusals = models.JSONField(default=dict, blank=True, help_text="reason → how many")
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "collector"
        ordering = ["-created_at", "-id"]
        verbose_name = "dataset import"

    def __str__(self) -> str:
        return f"import {self.pk} ({self.kind}, {self.status})"

    def finish(self, *, added: int, skipped: int, refusals: dict[str, int]) -> None:
        self._end(self.Status.DONE, added=added, skipped=skipped,
                  refused=sum(refusals.values()), refusals=refusals)  # fmt: skip
