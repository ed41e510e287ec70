"""A deleted drawing takes its file with it (after the delete commits)."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from collector.dataset import delete_drawing_file
from collector.models import Drawing


@receiver(post_delete, sender=Drawing)
def remove_file(sender, instance: Drawing, **kwargs) -> None:
    delete_drawing_file(instance)
