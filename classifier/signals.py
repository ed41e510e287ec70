"""A model version's row deleted outright takes its artifacts with it (after the
delete commits)."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from classifier.models import ModelVersion, artifact_path, remove_files


@receiver(post_delete, sender=ModelVersion)
def remove_artifacts(sender, instance: ModelVersion, **kwargs) -> None:
    """A row deleted outright (a restore making room, tests): everything in the
    version's folder goes too. Staff deleting a version keep its row
    (:meth:`ModelVersion.delete_keeping_record`)."""
    folder = artifact_path(instance, "").rstrip("/")
    names = instance.artifact_names()

    def cleanup() -> None:
        if ModelVersion.objects.filter(version=instance.version).exists():
            return  # a restore put another version with this number (and files) in its place
        remove_files(folder, names)

    transaction.on_commit(cleanup)
