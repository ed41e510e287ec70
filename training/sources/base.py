"""What every source returns, and the rules they share.

A source turns its files or rows into labelled 28×28 uint8 model inputs (ink
bright on dark) and hands a run its :class:`Part`: training images, validation
images, test sets by name, pools of variants, and a manifest saying exactly
which data was used. ``training.sources.load_training_data`` puts the parts of
the enabled sources together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from classifier.preprocessing import as_bytes  # noqa: F401  (its home; sources import it here)
from collector.formats import DatasetError

# Sources without a validation split of their own (Kaggle's CSV, a folder of images,
# EMNIST's and USPS's training parts, a run with no validation data at all) hold
# this share of it back: the one hold-out rule.
VAL_FRACTION = 0.1

# Told how loading goes: (step, done, total), e.g. ("rendering pen-digit variants",
# 1200, 7494). Steps are reported as they start and then every so often.
Report = Callable[[str, int, int], None]


def quiet(step: str, done: int, total: int) -> None:
    """A :data:`Report` that listens to nothing."""


class ChecksumMismatch(DatasetError):
    pass


@dataclass
class Images:
    """Labelled 28×28 model inputs, stored as bytes (ink bright on dark)."""

    x: np.ndarray  # (n, 28, 28) uint8
    y: np.ndarray  # (n,) uint8

    def __len__(self) -> int:
        return len(self.y)

    def as_inputs(self) -> np.ndarray:
        """(n, 28, 28) float32 in [0, 1]: what the model and the predictor take."""
        return self.x.astype(np.float32) / 255.0

    def subset(self, index: np.ndarray) -> Images:
        return Images(self.x[index], self.y[index])

    @classmethod
    def empty(cls) -> Images:
        return cls(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))

    @classmethod
    def concat(cls, parts: list[Images]) -> Images:
        return cls(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]))


@dataclass
class Pool:
    """Several model inputs (variants) of each of n drawings: each draw during
    training picks one drawing (by ``weight``) and one of its variants at random,
    so an epoch sees a different way of writing every drawing."""

    name: str
    x: np.ndarray  # (n, k, 28, 28) uint8; or (m, k, 28, 28), a pack's memory map, with rows
    y: np.ndarray  # (n,)
    weight: np.ndarray  # (n,) relative chance of being drawn
    draws: int  # draws per epoch at the pool's natural share
    share: float | None = None  # a fixed share of every batch instead
    # Drawing i's variants are x[rows[i]]: x is a pack (training.sources.cache.Pack)
    # read as a memory map, never held whole; the training stream reads its batches.
    rows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def inputs(self, index: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The variants of the drawings at ``index``, ``(m, k, 28, 28)``, in memory."""
        return np.asarray(self.x[index] if self.rows is None else self.x[self.rows[index]])

    def select(self, index: np.ndarray) -> Pool:
        """The pool's drawings at ``index``, with all their variants."""
        if self.rows is not None:
            return Pool(self.name, self.x, self.y[index], self.weight[index],
                        draws=len(index), share=self.share, rows=self.rows[index])  # fmt: skip
        return Pool(self.name, self.x[index], self.y[index], self.weight[index],
                    draws=len(index), share=self.share)  # fmt: skip


@dataclass
class Part:
    """One source's share of a run: what it trains on (fixed images and pools), what
    it validates on, the test sets it is judged on, and its manifest entry."""

    train: list[Images] = field(default_factory=list)
    val: list[Images] = field(default_factory=list)
    tests: dict[str, Images] = field(default_factory=dict)
    pools: list[Pool] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


def held_out_order(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(val, train)`` indices: a random :data:`VAL_FRACTION` of ``n`` (at least one)
    held back: the one hold-out rule for data without a validation split."""
    order = rng.permutation(n)
    cut = max(1, int(n * VAL_FRACTION))
    return order[:cut], order[cut:]


def hold_out(images: Images, rng: np.random.Generator) -> tuple[Images, Images]:
    """``(train, val)`` by :func:`held_out_order`."""
    val, train = held_out_order(len(images), rng)
    return images.subset(train), images.subset(val)


def take(images: Images, limit: int | None, rng: np.random.Generator) -> Images:
    """At most ``limit`` of the images, chosen at random (all of them for ``None``)."""
    if limit is None or len(images) <= limit:
        return images
    return images.subset(rng.choice(len(images), size=limit, replace=False))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified(path: Path, expected: str) -> Path:
    """``path``, once its sha256 is ``expected``: a split defined for one file must
    never be applied to another."""
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumMismatch(
            f"{path} has sha256 {actual}, expected {expected}: refusing a corrupt or "
            "different file."
        )
    return path
