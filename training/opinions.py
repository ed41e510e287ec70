"""What the serving model and the bootstrap model answer on a run's test sets,
for the gate to compare with the candidate on the same images.

A model's answers on a set never change, so they are computed once per model
and set and remembered in the cache (``training.sources.cache``), keyed by the
model's checksums and calibration and by the set's content: the bootstrap
model is scored once per test set, not in every run, and a promoted candidate's
answers, computed in its own run, serve as the active model's in the next one.
That is several seconds of every loop on two cores.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

import numpy as np

from classifier.models import ArtifactError, ModelVersion
from classifier.predictor import Predictor
from classifier.registry import BOOTSTRAP_DIR, BOOTSTRAP_NOTE, pen_view_in
from training import evaluation, gate, pen_view
from training.pen_data import PenSet, strokes_digest
from training.sources import base as source_base
from training.sources.cache import cache_file, cached

logger = logging.getLogger(__name__)

Sets = dict[str, "source_base.Images | PenSet"]


def test_sets(tests: dict[str, source_base.Images], pen_sets: dict[str, PenSet]) -> Sets:
    """The run's judged sets by the gate's names: the pictures by their source's
    name, the drawings with strokes answered by both views as ``name+pen``."""
    return {**tests, **{name + gate.BOTH: drawings for name, drawings in pen_sets.items()}}


def model_key(image_sha256: str, temperature: float, pen_sha256: str, combination: dict) -> str:
    """What decides a model's answers: both artifacts, the image view's temperature
    and how the two views are combined."""
    parts = json.dumps([image_sha256, temperature, pen_sha256, combination], sort_keys=True)
    return hashlib.sha256(parts.encode()).hexdigest()[:32]


def version_key(version: ModelVersion) -> str | None:
    """A registered version's key (None for one registered without checksums)."""
    if not version.tflite_sha256 or (version.pen_tflite and not version.pen_tflite_sha256):
        return None
    return model_key(version.tflite_sha256, version.calibration.get("temperature", 1.0),
                     version.pen_tflite_sha256, version.combination)  # fmt: skip


def set_digest(data: source_base.Images | PenSet) -> str:
    """The content of a test set: its inputs (pixels or strokes) and its labels."""
    digest = hashlib.sha256()
    if isinstance(data, PenSet):
        digest.update(b"strokes")
        strokes_digest(data.strokes, digest)
        digest.update(data.labels().tobytes())
    else:
        digest.update(b"pixels")
        digest.update(np.ascontiguousarray(data.x).tobytes())
        digest.update(np.asarray(data.y, np.int64).tobytes())
    return digest.hexdigest()


def answered(
    image: Predictor, pen_model: Predictor | None, combination: dict | None, sets: Sets
) -> dict[str, np.ndarray]:
    """A model's digit for every item of every set, as it serves them: pictures by
    the image view, drawings with strokes by both views combined (the picture
    alone for a model without a pen view)."""
    pictures = {n: s for n, s in sets.items() if not isinstance(s, PenSet)}
    digits = {n: p.argmax(axis=1) for n, p in evaluation.answers(image, pictures).items()}
    for name, drawings in sets.items():
        if isinstance(drawings, PenSet):
            digits[name] = pen_view.answers(image, pen_model, combination, drawings)
    return digits


def remember(key: str | None, sets: Sets, digits: dict[str, np.ndarray]) -> None:
    """Keep a model's answers (a candidate's, computed in its run) for later runs."""
    if key is None:
        return
    for name, data in sets.items():
        if name in digits:
            cached("answers", (key, set_digest(data)), lambda n=name: {"digits": digits[n]})


def recalled(
    key: str | None, sets: Sets, answer: Callable[[Sets], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """A model's answers on ``sets``: remembered ones, and ``answer(missing)`` for
    the sets it has not answered before (then remembered)."""
    if key is None:
        return answer(sets)
    entries = {name: (key, set_digest(data)) for name, data in sets.items()}
    found = {
        name: cached("answers", entry, dict)["digits"]
        for name, entry in entries.items()
        if cache_file("answers", entry).exists()
    }
    missing = {name: data for name, data in sets.items() if name not in found}
    if missing:
        computed = answer(missing)
        for name in missing:
            found[name] = cached("answers", entries[name], lambda n=name: {"digits": computed[n]})[
                "digits"
            ]
    return {name: found[name] for name in sets}


def gate_opinions(sets: Sets) -> tuple[dict | None, dict | None]:
    """What the active model and the bootstrap model answer on ``sets`` (None for a
    model that is not there or cannot be loaded: the gate then judges without it)."""
    active = ModelVersion.active()
    active_digits = None
    if active is not None:
        try:
            active_digits = recalled(version_key(active), sets, lambda missing: answered(
                active.load_predictor(), active.load_pen_predictor(), active.combination, missing
            ))  # fmt: skip
        except ArtifactError:
            logger.warning("The active model cannot be loaded: the gate judges without it")
    if active is not None and active.note == BOOTSTRAP_NOTE and active_digits is not None:
        return active_digits, active_digits
    try:
        return active_digits, _bootstrap_opinion(sets)
    except Exception:  # the shipped artifact missing or unreadable: no drift check
        logger.warning("The bootstrap model cannot be loaded: the gate judges without it")
        return active_digits, None


def _bootstrap_opinion(sets: Sets) -> dict[str, np.ndarray]:
    shipped = json.loads((BOOTSTRAP_DIR / "metrics.json").read_text())
    temperature = (shipped.get("calibration") or {}).get("temperature", 1.0)
    pen_bytes, combination = pen_view_in(BOOTSTRAP_DIR)
    image_bytes = (BOOTSTRAP_DIR / "model.tflite").read_bytes()
    pen_sha256 = hashlib.sha256(pen_bytes).hexdigest() if pen_bytes else ""
    key = model_key(hashlib.sha256(image_bytes).hexdigest(), temperature, pen_sha256, combination)

    def answer(missing: Sets) -> dict[str, np.ndarray]:
        # As it would serve them: both views calibrated as it was shipped.
        image = Predictor(image_bytes, temperature=temperature)
        pen_model = (
            Predictor(pen_bytes, temperature=combination["pen_temperature"]) if pen_bytes else None
        )
        return answered(image, pen_model, combination, missing)

    return recalled(key, sets, answer)
