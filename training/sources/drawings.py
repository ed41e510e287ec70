"""Contributed drawings: approved ones, by the split each was given on arrival.

A drawing in ``test`` has never been, and never will be, trained on: the gate
compares versions on the same test drawings. Training drawings with strokes
also yield stroke-space variants. Unreadable drawings are left out and listed
(``collector.dataset.read_model_input``).
"""

from __future__ import annotations

import numpy as np

from classifier import canvas
from collector import dataset
from collector.models import Drawing
from training.config import DRAWINGS_FOR_SHARE, TrainConfig
from training.sources.base import Images, Part, Pool, Report, as_bytes, quiet
from training.sources.variants import build_variants

# Pen digits imported as drawings are the pendigits source again, split by drawing
# instead of by writer: with both, they would leak held-out writers.
PENDIGITS_IMPORT = "import:pendigits"


def drawings_pool(
    config: TrainConfig,
    exclude_sources: tuple[str, ...] = (),
    skipped: list | None = None,
    report: Report = quiet,
) -> Pool | None:
    """Approved training drawings as a pool: each drawing's stored picture first, then
    (for drawings with strokes) stroke-space variants. Once there are
    ``DRAWINGS_FOR_SHARE`` of them they fill ``config.drawings_share`` of every batch,
    and corrections are drawn ``config.correction_weight`` times as often."""
    rows = (
        Drawing.objects.filter(status=Drawing.Status.APPROVED, split=Drawing.Split.TRAIN)
        .exclude(source__in=exclude_sources)
        .order_by("id")
    )
    firsts, strokes, labels, weights, seeds = [], [], [], [], []
    total = rows.count()
    report("reading approved drawings", 0, total)
    for done, drawing in enumerate(rows.iterator(chunk_size=500), 1):
        if done % 500 == 0:
            report("reading approved drawings", done, total)
        model_input = dataset.read_model_input(drawing, skipped)
        if model_input is None:
            continue
        firsts.append(as_bytes(model_input))
        strokes.append(canvas.parse_strokes(drawing.strokes) if drawing.strokes else None)
        labels.append(drawing.label)
        weights.append(config.correction_weight if drawing.source == "correction" else 1.0)
        seeds.append((config.seed, drawing.pk))
    if not firsts:
        return None
    varied = [i for i, kept in enumerate(strokes) if kept]
    count = config.variants if config.augment and varied else 1
    # Every drawing's picture in every slot; those with strokes get varied ones.
    x = np.repeat(np.stack(firsts)[:, None], count, axis=1)
    if count > 1:
        x[varied] = build_variants(
            [(strokes[i], labels[i], count, seeds[i], 0.0, config.scan_share, firsts[i])
             for i in varied],
            report, "rendering variants of contributed drawings",
        )  # fmt: skip
    enough = len(firsts) >= DRAWINGS_FOR_SHARE
    return Pool(
        "drawings",
        x,
        np.asarray(labels, np.uint8),
        np.asarray(weights, np.float64),
        draws=len(firsts),
        share=config.drawings_share if enough and config.drawings_share > 0 else None,
    )


def load_drawings(
    status: str = "approved",
    exclude_sources: tuple[str, ...] = (),
    splits: tuple[str, ...] = ("train", "val", "test"),
    skipped: list | None = None,
) -> dict[str, Images]:
    """Contributed drawings by their stored split, through the serving preprocessing."""
    parts: dict[str, tuple[list, list]] = {s: ([], []) for s in ("train", "val", "test")}
    rows = Drawing.objects.filter(status=status, split__in=splits).exclude(
        source__in=exclude_sources
    )
    for drawing in rows.order_by("id").iterator(chunk_size=500):
        model_input = dataset.read_model_input(drawing, skipped)
        if model_input is None:
            continue
        xs, ys = parts[drawing.split]
        xs.append(as_bytes(model_input))
        ys.append(drawing.label)
    return {
        split: Images(np.stack(xs), np.asarray(ys, np.uint8)) if xs else Images.empty()
        for split, (xs, ys) in parts.items()
    }


def drawings_manifest(excluded_sources: tuple[str, ...]) -> dict:
    """Which drawings a run used, so it can be reproduced: ids and hashes per split."""
    rows = (
        Drawing.objects.filter(status=Drawing.Status.APPROVED)
        .exclude(source__in=excluded_sources)
        .order_by("id")
    )
    return {
        split: [[pk, sha] for pk, sha in rows.filter(split=split).values_list("id", "sha256")]
        for split in ("train", "val", "test")
    }


def part(config: TrainConfig, rng: np.random.Generator, report: Report) -> Part:
    """Training drawings as a pool, validation drawings, and the test drawings as
    ``drawings-test``."""
    imported = (PENDIGITS_IMPORT,) if "pendigits" in config.sources else ()
    skipped: list = []
    drawings = load_drawings(exclude_sources=imported, splits=("val", "test"), skipped=skipped)
    found = Part()
    if len(drawings["test"]):
        found.tests["drawings-test"] = drawings["test"]
    if len(drawings["val"]):
        found.val.append(drawings["val"])
    contributed = drawings_pool(config, imported, skipped, report)
    if contributed is not None:
        found.pools.append(contributed)
    found.manifest = {**drawings_manifest(imported), "skipped": skipped}
    return found
