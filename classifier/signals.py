"""A deleted model version takes its artifacts with it (after the delete commits)."""

from __future__ import annotations

import logging

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from classifier.models import ModelVersion, artifact_path

logger = logging.getLogger(__name__)


@receiver(post_delete, sender=ModelVersion)
def remove_artifacts(sender, instance: ModelVersion, **kwargs) -> None:
    """Everything in the version's folder (model, plots, report): named by version
    number, which no other version shares."""
    folder = artifact_path(instance, "").rstrip("/")
    names = instance.artifact_names()

    def cleanup() -> None:
        if ModelVersion.objects.filter(version=instance.version).exists():
            return  # a restore put another version with this number (and files) in its place
        try:
            _, files = default_storage.listdir(folder)
            names.update(f"{folder}/{name}" for name in files)
        except (FileNotFoundError, NotADirectoryError):
            pass
        for name in sorted(names):
            try:
                default_storage.delete(name)
            except OSError:
                logger.exception("Could not remove %s of a deleted model version", name)

    transaction.on_commit(cleanup)
