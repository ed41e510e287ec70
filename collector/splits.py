"""Stratified, permanent train/val/test assignment: the rule.

Each new drawing goes to the split of its label that is furthest below its
target share (ties broken by the drawing's hash). This "largest deficit" rule
keeps, for every label and at every moment, each split within one drawing of
its exact share (the deficits always sum to one, and the largest is served),
which random or hash-based assignment cannot promise for small classes. The
split is stored on the row and never changes: the test split stays unseen.

The per-label counts the rule reads are ``SplitCounter`` rows
(``collector.models``), claimed and released through its manager.
"""

from __future__ import annotations

from django.conf import settings

SPLITS = ("train", "val", "test")


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
