"""A new drawing's model inputs and variants are built in the background as it
arrives (after its transaction commits), so the next run reads them instead of
rendering them."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from collector.models import Drawing
from collector.storing import stored_in_bulk


@receiver(post_save, sender=Drawing)
def prepare_new_drawing(sender, instance: Drawing, created: bool, **kwargs) -> None:
    if created and instance.status != Drawing.Status.REJECTED:
        from training.tasks import prepare_drawings_soon

        transaction.on_commit(prepare_drawings_soon)


@receiver(stored_in_bulk, sender=Drawing)
def prepare_new_drawings(sender, drawings: list[Drawing], **kwargs) -> None:
    """Drawings an import stored together (sent after their transaction committed)."""
    from training.tasks import prepare_drawings_soon

    prepare_drawings_soon()
