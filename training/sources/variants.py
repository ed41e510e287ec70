"""Stroke-space variants, rendered in parallel: the slow step of a first run.

``training.strokes`` makes one drawing's variants; this runs many such jobs, in
worker processes when there are many, and says which synthesis the cached
results belong to.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from classifier import preprocessing
from training import strokes as pen
from training.config import TrainConfig
from training.sources.base import Pool, Report, quiet
from training.sources.cache import cached

# Bump when ``training.strokes`` or ``training.allographs`` change what they make:
# cached variant pools and style test sets belong to one version.
SYNTHESIS_VERSION = 2
REPORT_EVERY = 256  # jobs between reports while variants render


def synthesis_key(source_sha256: str) -> tuple:
    """What shapes synthesised arrays besides their own parameters: the source file,
    the synthesis and the preprocessing."""
    return (
        source_sha256,
        SYNTHESIS_VERSION,
        preprocessing.PREPROCESSING_VERSION,
        preprocessing.CANVAS_STROKE_WIDTH,
        preprocessing.TARGET_STROKE_20,
    )


def build_variants(
    jobs: list[tuple], report: Report = quiet, step: str = "rendering variants"
) -> np.ndarray:
    """Run ``pen.variants`` jobs (about 2 ms a variant: 50,000 take under a minute
    on two cores), stacked; ``report`` hears how many jobs are done."""
    return in_parallel(pen.variants_job, jobs, report, step)


def in_parallel(job, jobs: list[tuple], report: Report = quiet, step: str = "") -> np.ndarray:
    """``job`` (a top-level function free of Django's models) over ``jobs``, in
    worker processes when there are many and this process may start them, stacked
    in order. Processes are spawned, not forked, because the caller may already run
    TensorFlow's threads. A daemonic process (a Celery worker's child) may start
    none: it works alone, which is why the start-up warm-up runs as a process of
    its own (``manage.py warm_caches``)."""
    report(step, 0, len(jobs))
    workers = min(len(os.sched_getaffinity(0)), 8)
    if len(jobs) < 200 or workers < 2 or multiprocessing.current_process().daemon:
        return _collect(map(job, jobs), len(jobs), report, step)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as executor:
        results = executor.map(job, jobs, chunksize=64)
        return _collect(results, len(jobs), report, step)


def _collect(results, total: int, report: Report, step: str) -> np.ndarray:
    collected = []
    for done, result in enumerate(results, 1):
        collected.append(result)
        if done % REPORT_EVERY == 0 or done == total:
            report(step, done, total)
    return np.stack(collected)


def stroke_pool(
    name: str,
    digits: list[tuple[list[np.ndarray], int]],
    config: TrainConfig,
    source_key: tuple,
    *,
    cache_name: str,
    step: str,
    draws_per_digit: int,
    seed_base: int = 0,
    key_extra: tuple = (),
    report: Report = quiet,
) -> Pool:
    """The pool ``name``: ``config.variants`` stroke-space variants of each of
    ``digits`` (canvas strokes and labels), cached as ``cache_name`` by
    ``source_key`` (:func:`synthesis_key` of the source), the run's synthesis
    settings and ``key_extra``; ``step`` is what the run's progress says while it
    renders. Each digit is drawn ``draws_per_digit`` times an epoch."""

    def build() -> dict[str, np.ndarray]:
        jobs = [
            (strokes, label, config.variants, (config.seed, seed_base + i), config.style_share,
             config.scan_share, None)
            for i, (strokes, label) in enumerate(digits)
        ]  # fmt: skip
        return {
            "x": build_variants(jobs, report, step),
            "y": np.asarray([label for _, label in digits], np.uint8),
        }

    key = (*source_key, config.seed, config.variants, config.style_share, config.scan_share,
           *key_extra)  # fmt: skip
    arrays = cached(cache_name, key, build)
    n = len(arrays["y"])
    return Pool(name, arrays["x"], arrays["y"], np.ones(n), draws=draws_per_digit * n)
