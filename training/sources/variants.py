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
from training.sources.base import Report, quiet

# Bump when ``training.strokes`` or ``training.allographs`` change what they make:
# cached variant pools and style test sets belong to one version.
SYNTHESIS_VERSION = 1
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
    """Run ``pen.variants`` jobs, in worker processes when there are many (about
    2 ms a variant: 50,000 take under a minute on two cores). Processes are spawned,
    not forked, because the caller may already run TensorFlow's threads. ``report``
    hears how many jobs are done."""
    report(step, 0, len(jobs))
    workers = min(len(os.sched_getaffinity(0)), 8)
    if len(jobs) < 200 or workers < 2 or multiprocessing.current_process().daemon:
        results = map(pen.variants_job, jobs)
        return _collect(results, len(jobs), report, step)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as executor:
        results = executor.map(pen.variants_job, jobs, chunksize=64)
        return _collect(results, len(jobs), report, step)


def _collect(results, total: int, report: Report, step: str) -> np.ndarray:
    collected = []
    for done, result in enumerate(results, 1):
        collected.append(result)
        if done % REPORT_EVERY == 0 or done == total:
            report(step, done, total)
    return np.stack(collected)
