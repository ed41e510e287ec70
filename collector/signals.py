"""A deleted drawing takes its file with it (after the delete commits); a newly
promoted model re-scores the drawings (in the background)."""

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from classifier.models import ModelVersion, promoted
from collector.dataset import delete_drawing_file
from collector.models import DatasetExport, Drawing


@receiver(post_delete, sender=Drawing)
def remove_file(sender, instance: Drawing, **kwargs) -> None:
    delete_drawing_file(instance)


@receiver(promoted, sender=ModelVersion)
def rescore(sender, version: ModelVersion, **kwargs) -> None:
    from collector import tasks

    # A fresh instance (``make run`` registering the bootstrap model before Redis is
    # up) has nothing to score, and nothing to warn about.
    if Drawing.objects.exists():
        tasks.enqueue_scoring()


@receiver(post_delete, sender=DatasetExport)
def remove_export_file(sender, instance: DatasetExport, **kwargs) -> None:
    name = instance.file.name
    if name:
        transaction.on_commit(lambda: default_storage.delete(name))
