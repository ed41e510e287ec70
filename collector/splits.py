"""Stratified, permanent train/val/test assignment.

Each new drawing goes to the split of its label that is furthest below its
target share (ties broken by the drawing's hash). This "largest deficit" rule
keeps, for every label and at every moment, each split within one drawing of
its exact share (the deficits always sum to one, and the largest is served),
which random or hash-based assignment cannot promise for small classes. The
split is stored on the row and never changes: the test split stays unseen.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from collector.models import Drawing, SplitCounter

SPLITS = (Drawing.Split.TRAIN, Drawing.Split.VAL, Drawing.Split.TEST)


def shares() -> dict[str, float]:
    configured = settings.DIGITS_SPLIT_SHARES
    total = sum(configured.values())
    return {split: configured[split] / total for split in SPLITS}


def choose_split(counts: dict[str, int], sha256: str) -> str:
    """The split of largest deficit against the target shares, after this drawing."""
    n = sum(counts.values()) + 1
    deficits = {split: share * n - counts.get(split, 0) for split, share in shares().items()}
    best = max(deficits.values())
    tied = [split for split in SPLITS if deficits[split] >= best - 1e-9]
    return tied[int(sha256[:8], 16) % len(tied)]


def claim_split(label: int, sha256: str, forced: str | None = None) -> str:
    """Pick (or record a given) split for a new drawing and count it.

    Must run inside the transaction that inserts the drawing, so a rollback
    un-counts it too.
    """
    assert transaction.get_connection().in_atomic_block, "claim_split needs a transaction"
    counter, _ = SplitCounter.objects.select_for_update().get_or_create(label=label)
    counts = {split: getattr(counter, split) for split in SPLITS}
    split = forced or choose_split(counts, sha256)
    setattr(counter, split, counts[split] + 1)
    counter.save(update_fields=[split])
    return split


def release_split(label: int, split: str) -> None:
    """Un-count a deleted drawing."""
    counter = SplitCounter.objects.select_for_update().filter(label=label).first()
    if counter is not None and getattr(counter, split) > 0:
        setattr(counter, split, getattr(counter, split) - 1)
        counter.save(update_fields=[split])
