"""Contributed drawings: approved ones, by the split each was given on arrival.

A drawing in ``test`` has never been, and never will be, trained on: the gate
compares versions on the same test drawings. Training drawings with strokes
also yield stroke-space variants. Unreadable drawings are left out and listed
(``collector.dataset.read_model_input``).

Each drawing's inputs are built once, when it arrives, into a small file of its
own (the item cache); a run reads them through packs (``cache.Pack``): what the
last run read is one memory-mapped file, so a run opens only the new drawings'
files, and the training stream reads its batches from the map.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from django.db.models import QuerySet, TextField
from django.db.models.functions import MD5, Cast

from classifier import canvas
from collector import dataset
from collector.models import Drawing
from training.config import DRAWINGS_FOR_SHARE, TrainConfig
from training.sources.base import Images, Part, Pool, Report, as_bytes, quiet
from training.sources.cache import Pack, item_file, read_item, write_item
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


@dataclass
class Listed:
    """Drawings a run reads, by id, as much as finding their inputs needs."""

    ids: np.ndarray  # int64
    names: list[str]  # in a pack: picture, label, strokes
    labels: np.ndarray  # uint8
    corrections: np.ndarray  # bool: sent to correct a guess (weighted in training)
    splits: np.ndarray  # str

    def subset(self, keep: np.ndarray) -> Listed:
        return Listed(self.ids[keep], [self.names[i] for i in np.flatnonzero(keep)],
                      self.labels[keep], self.corrections[keep], self.splits[keep])  # fmt: skip


def listed(rows: QuerySet) -> Listed:
    """``rows`` by id, each named by what shapes its inputs: its picture's hash,
    its label, and a digest of its strokes that the database computes (no stroke is
    decoded here: at a million drawings that alone took over a minute)."""
    digest = MD5(Cast("strokes", output_field=TextField()))
    values = (
        rows.order_by("id")
        .annotate(pen_digest=digest)
        .values_list("id", "sha256", "label", "source", "split", "pen_digest")
    )
    ids, names, labels, corrections, splits = [], [], [], [], []
    for pk, sha, label, source, split, pen in values.iterator(chunk_size=10_000):
        ids.append(pk)
        names.append(f"{sha}-{label}-{pen[:16]}" if pen else f"{sha}-{label}")
        labels.append(label)
        corrections.append(source == "correction")
        splits.append(split)
    return Listed(np.asarray(ids, np.int64), names, np.asarray(labels, np.uint8),
                  np.asarray(corrections, bool), np.asarray(splits, dtype=str))  # fmt: skip


@dataclass
class Packed:
    """Readable drawings' inputs: drawing i's are ``x[rows[i]]`` (a pack's memory
    map), or ``x[i]`` in memory (``rows`` None) when the disk took no pack."""

    x: np.ndarray
    rows: np.ndarray | None
    listed: Listed

    def inputs(self) -> np.ndarray:
        return np.asarray(self.x if self.rows is None else self.x[self.rows])


def packed_inputs(
    rows: QuerySet, count: int, config: TrainConfig, skipped: list | None = None,
    report: Report = quiet, step: str = "reading approved drawings",
) -> Packed:  # fmt: skip
    """The model inputs of the drawings in ``rows`` (``count`` each: the picture,
    then variants; a drawing without strokes repeats its picture), from the run's
    pack (:class:`training.sources.cache.Pack`). What the pack lacks is read from
    the item cache or built (:func:`prepared_inputs`), ``CHUNK`` drawings at a
    time, and appended: a run reads what changed since the last one, and holds
    none of the inputs in memory. Unreadable drawings are left out (``skipped``)."""
    drawings = listed(rows)
    pack = Pack("drawings", item_key(count, config), (count, 28, 28))
    kept: dict[int, np.ndarray] = {}  # inputs the disk would not take
    with pack.writer() as writer:
        found = writer.rows(drawings.names)
        missing = np.flatnonzero(found < 0)
        report(step, 0, len(missing))
        for start in range(0, len(missing), CHUNK):
            wanted = missing[start : start + CHUNK]
            by_id = Drawing.objects.in_bulk(drawings.ids[wanted].tolist())
            # Relabelled or gone since it was listed: left for the next run.
            present = [(j, by_id.get(int(drawings.ids[j]))) for j in wanted]
            present = [(j, d) for j, d in present if d and d.label == drawings.labels[j]]
            prepared = prepared_inputs([d for _, d in present], count, config, skipped, report)
            built = [(j, x) for (j, _), x in zip(present, prepared, strict=True) if x is not None]
            if not built:
                continue
            arrays = np.stack([np.broadcast_to(x if len(x) == count else x[:1], (count, 28, 28))
                               for _, x in built])  # fmt: skip
            places = writer.add([drawings.names[j] for j, _ in built], arrays)
            if places is None:  # the disk is full: this run keeps them in memory
                kept.update((j, a) for (j, _), a in zip(built, arrays, strict=True))
            else:
                found[[j for j, _ in built]] = places
            report(step, start + len(wanted), len(missing))
        if writer.failed is not None:
            logger.warning("Could not pack the drawings' inputs: %s", writer.failed)
        x = pack.inputs(writer.count)
    readable = found >= 0
    readable[list(kept)] = True
    if not kept:
        return Packed(x, found[readable], drawings.subset(readable))
    whole = np.empty((int(readable.sum()), count, 28, 28), np.uint8)
    for n, j in enumerate(np.flatnonzero(readable)):
        whole[n] = kept[j] if j in kept else x[found[j]]
    return Packed(whole, None, drawings.subset(readable))


def drawings_pool(
    config: TrainConfig,
    exclude_sources: tuple[str, ...] = (),
    skipped: list | None = None,
    report: Report = quiet,
) -> Pool | None:
    """Approved training drawings as a pool: each drawing's stored picture first, then
    (for drawings with strokes) stroke-space variants, read from the run's pack and
    never held in memory. Once there are ``DRAWINGS_FOR_SHARE`` of them they fill
    ``config.drawings_share`` of every batch, and corrections are drawn
    ``config.correction_weight`` times as often."""
    rows = run_drawings(config, exclude_sources)["train"]
    found = packed_inputs(rows, variant_count(config), config, skipped, report)
    n = len(found.listed.ids)
    if not n:
        return None
    weights = np.where(found.listed.corrections, config.correction_weight, 1.0)
    enough = n >= DRAWINGS_FOR_SHARE
    return Pool(
        "drawings",
        found.x,
        found.listed.labels,
        weights,
        draws=n,
        share=config.drawings_share if enough and config.drawings_share > 0 else None,
        rows=found.rows,
    )


def load_drawings(
    status: str = "approved",
    exclude_sources: tuple[str, ...] = (),
    splits: tuple[str, ...] = ("train", "val", "test"),
    skipped: list | None = None,
    rows=None,
) -> dict[str, Images]:
    """Contributed drawings by their stored split, through the serving preprocessing
    (their pictures alone, from the pictures' pack); ``rows``: which drawings, when
    not all of ``status`` in ``splits``."""
    if rows is None:
        rows = Drawing.objects.filter(status=status, split__in=splits).exclude(
            source__in=exclude_sources
        )
    found = packed_inputs(rows, 1, TrainConfig(), skipped, step="reading drawings")
    x = found.inputs()[:, 0]
    parts = {}
    for split in ("train", "val", "test"):
        mine = found.listed.splits == split
        parts[split] = Images(x[mine], found.listed.labels[mine]) if mine.any() else Images.empty()
    return parts


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
