"""Contributed drawings: approved ones, by the split each was given on arrival.

A drawing in ``test`` has never been, and never will be, trained on: the gate
compares versions on the same test drawings. Training drawings with strokes
also yield stroke-space variants. Unreadable drawings are left out and listed
(``collector.dataset.read_model_input``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence

import numpy as np
from django.db.models import QuerySet

from classifier import canvas
from collector import dataset
from collector.models import Drawing
from training.config import DRAWINGS_FOR_SHARE, TrainConfig
from training.sources.base import Images, Part, Pool, Report, as_bytes, quiet
from training.sources.cache import item_file, read_item, write_item
from training.sources.variants import build_variants, synthesis_key

logger = logging.getLogger(__name__)

# Pen digits imported as drawings are the pendigits source again, split by drawing
# instead of by writer: with both, they would leak held-out writers.
PENDIGITS_IMPORT = "import:pendigits"


CHUNK = 1000  # drawings read from the database and the item cache at a time


def item_key(count: int, config: TrainConfig) -> tuple:
    """What shapes every drawing's cached inputs alike: the synthesis and
    preprocessing versions and, for varied drawings, the run's synthesis settings."""
    base = synthesis_key("drawings")
    return (*base, 1) if count == 1 else (*base, count, config.seed, config.scan_share)


def item_name(drawing: Drawing) -> str:
    """What shapes one drawing's inputs: its picture (the sha256), its label (the
    variants' random draws depend on it) and its strokes."""
    if not drawing.strokes:
        return f"{drawing.sha256}-{drawing.label}"
    pen = json.dumps(drawing.strokes, separators=(",", ":")).encode()
    return f"{drawing.sha256}-{drawing.label}-{hashlib.sha256(pen).hexdigest()[:16]}"


def variant_count(config: TrainConfig) -> int:
    """How many inputs a training drawing with strokes has: its picture and its variants."""
    return config.variants if config.augment else 1


def prepared_inputs(
    drawings: Sequence[Drawing],
    count: int,
    config: TrainConfig,
    skipped: list | None = None,
    report: Report = quiet,
) -> list[np.ndarray | None]:
    """Each drawing's model inputs, ``(k, 28, 28)`` uint8: its stored picture first,
    then (with strokes, when ``count`` > 1) stroke-space variants, ``k = count``; a
    drawing without strokes has its picture alone (``k = 1``). None for a drawing
    whose file is unreadable (noted in ``skipped``).

    Read from the item cache (``DIGITS_ITEM_CACHE_DIR``), where the background
    worker puts them when a drawing arrives (:func:`prepare`); what is missing is
    built here, in parallel where the process may, and kept for the next run. So a
    run re-reads no PNG and re-renders no variant it has seen, and its loading time
    grows with what changed, not with the dataset."""
    key = item_key(count, config)
    found: list[np.ndarray | None] = [None] * len(drawings)
    jobs, varied = [], []
    built: list[int] = []
    for i, drawing in enumerate(drawings):
        cached_inputs = read_item(item_file("drawings", key, item_name(drawing)))
        if cached_inputs is not None and cached_inputs.shape[1:] == (28, 28):
            found[i] = cached_inputs
            continue
        first = dataset.read_model_input(drawing, skipped)
        if first is None:
            continue
        built.append(i)
        first = as_bytes(first)
        if count > 1 and drawing.strokes:
            seed = (config.seed, int(drawing.sha256[:12], 16))  # by content: a cache key
            strokes = canvas.parse_strokes(drawing.strokes)
            jobs.append((strokes, drawing.label, count, seed, 0.0, config.scan_share, first))
            varied.append(i)
        else:
            found[i] = first[None]
    if jobs:
        step = "rendering variants of contributed drawings"
        for i, inputs in zip(varied, build_variants(jobs, report, step), strict=True):
            found[i] = inputs
    for i in built:
        try:
            write_item(item_file("drawings", key, item_name(drawings[i])), found[i])
        except OSError as exc:  # a full disk costs the next run time, not this one
            logger.warning("Could not cache drawing %s's inputs: %s", drawings[i].pk, exc)
            break
    return found


def _chunks(rows) -> Iterator[list[Drawing]]:
    chunk: list[Drawing] = []
    for drawing in rows.iterator(chunk_size=CHUNK):
        chunk.append(drawing)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def sampled(rows, limit: int | None, seed: int):
    """``rows`` (approved drawings of one split), or at most ``limit`` of them when
    there are more: the newest half of ``limit`` (what the loop's fine-tune is for:
    the drawings that arrived since the serving model) and a seeded random sample
    of the older ones. So a run with a ``limit`` (``finetune``) reads the same
    number of drawings at ten thousand or a million: its time does not grow with
    the dataset. Only the ids are read to choose (8 bytes a drawing)."""
    if limit is None:
        return rows
    ids = np.fromiter(rows.order_by("id").values_list("id", flat=True), np.int64)
    if len(ids) <= limit:
        return rows
    newest = limit // 2
    older = np.random.default_rng(seed).choice(len(ids) - newest, limit - newest, replace=False)
    return rows.filter(id__in=[int(i) for i in np.concatenate([ids[older], ids[-newest:]])])


def run_drawings(config: TrainConfig, exclude_sources: tuple[str, ...] = ()) -> dict[str, QuerySet]:
    """Which approved drawings a run reads, by split, for both views alike: every
    test drawing (the gate compares versions on all of them), and at most the run's
    ``limit`` of the validation and of the training ones (:func:`sampled`)."""
    approved = Drawing.objects.filter(status=Drawing.Status.APPROVED).exclude(
        source__in=exclude_sources
    )
    chosen = {"test": approved.filter(split=Drawing.Split.TEST)}
    for split in (Drawing.Split.VAL, Drawing.Split.TRAIN):
        chosen[split] = sampled(approved.filter(split=split), config.limit, config.seed)
    return chosen


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
    rows = run_drawings(config, exclude_sources)["train"].order_by("id")
    count = variant_count(config)
    total = rows.count()
    # Filled in place, a drawing at a time: a list of every drawing's inputs and
    # then the array would hold the pool twice (gigabytes at a million drawings).
    # Every drawing's picture in every slot; those with strokes have varied ones.
    slots = count if count > 1 and rows.exclude(strokes=None).exists() else 1
    x = np.empty((total, slots, 28, 28), np.uint8)
    labels = np.empty(total, np.uint8)
    weights = np.empty(total, np.float64)
    report("reading approved drawings", 0, total)
    done = n = 0
    for chunk in _chunks(rows):
        prepared = prepared_inputs(chunk, count, config, skipped, report)
        for drawing, one in zip(chunk, prepared, strict=True):
            if one is None or n == total:  # unreadable (or arrived since the count)
                continue
            x[n] = one if len(one) == slots else one[:1]
            labels[n] = drawing.label
            weights[n] = config.correction_weight if drawing.source == "correction" else 1.0
            n += 1
        done += len(chunk)
        report("reading approved drawings", done, total)
    if not n:
        return None
    if n < total:  # views: no second copy of the pool
        x, labels, weights = x[:n], labels[:n], weights[:n]
    enough = n >= DRAWINGS_FOR_SHARE
    return Pool(
        "drawings",
        x,
        labels,
        weights,
        draws=n,
        share=config.drawings_share if enough and config.drawings_share > 0 else None,
    )


def load_drawings(
    status: str = "approved",
    exclude_sources: tuple[str, ...] = (),
    splits: tuple[str, ...] = ("train", "val", "test"),
    skipped: list | None = None,
    rows=None,
) -> dict[str, Images]:
    """Contributed drawings by their stored split, through the serving preprocessing
    (their pictures alone, from the item cache where they are in it); ``rows``:
    which drawings, when not all of ``status`` in ``splits``."""
    parts: dict[str, tuple[list, list]] = {s: ([], []) for s in ("train", "val", "test")}
    if rows is None:
        rows = Drawing.objects.filter(status=status, split__in=splits).exclude(
            source__in=exclude_sources
        )
    for chunk in _chunks(rows.order_by("id")):
        pictures = prepared_inputs(chunk, 1, TrainConfig(), skipped)
        for drawing, x in zip(chunk, pictures, strict=True):
            if x is None:
                continue
            xs, ys = parts[drawing.split]
            xs.append(x[0])
            ys.append(drawing.label)
    return {
        split: Images(np.stack(xs), np.asarray(ys, np.uint8)) if xs else Images.empty()
        for split, (xs, ys) in parts.items()
    }


def prepare(config: TrainConfig, report: Report = quiet) -> int:
    """Build the cached inputs of every drawing a run may read (approved or waiting
    for review) that has none yet: variants for training drawings, the picture for
    the others. What the background worker does when drawings arrive and at each
    start; returns how many drawings it built."""
    built = 0
    rows = Drawing.objects.exclude(status=Drawing.Status.REJECTED).order_by("-id")
    for chunk in _chunks(rows):
        training = [d for d in chunk if d.split == Drawing.Split.TRAIN]
        others = [d for d in chunk if d.split != Drawing.Split.TRAIN]
        for count, group in ((variant_count(config), training), (1, others)):
            key = item_key(count, config)
            wanted = [d for d in group if not item_file("drawings", key, item_name(d)).exists()]
            if wanted:
                prepared_inputs(wanted, count, config, report=report)
                built += len(wanted)
    return built


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
    chosen = run_drawings(config, imported)
    drawings = load_drawings(skipped=skipped, rows=chosen["test"])
    drawings["val"] = load_drawings(skipped=skipped, rows=chosen["val"])["val"]
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
