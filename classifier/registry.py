"""Registering a trained model directory as a ``ModelVersion``.

Artifacts are copied into Django storage, so web and worker processes on
different machines share them. A directory is refused unless its served
artifact loads and was verified against the Keras model when it was trained.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from classifier.models import ModelVersion, artifact_path
from classifier.predictor import Predictor

BOOTSTRAP_DIR = Path(__file__).resolve().parent / "bootstrap"
BOOTSTRAP_NOTE = "bootstrap model"  # how ensure_model marks the version it registers


class RegistrationError(RuntimeError):
    pass


def pen_view_in(directory: Path) -> tuple[bytes, dict]:
    """A model directory's pen view as shipped: its artifact's bytes and the fitted
    combination from its report (``b""`` and ``{}`` for a directory without one)."""
    metrics = directory / "metrics.json"
    report = json.loads(metrics.read_text()) if metrics.exists() else {}
    combination = (report.get("pen") or {}).get("combination") or {}
    pen_path = directory / "pen.tflite"
    if not combination or not pen_path.exists():
        return b"", {}
    return pen_path.read_bytes(), combination


def register_directory(directory: Path, *, activate: bool, note: str = "", by=None) -> ModelVersion:
    """Copy a trained model directory into storage as the next version (a candidate,
    or the active one with ``activate``), its report plots stored beside it."""
    directory = Path(directory)
    tflite_path = directory / "model.tflite"
    metrics_path = directory / "metrics.json"
    if not tflite_path.exists() or not metrics_path.exists():
        raise RegistrationError(f"{directory} lacks model.tflite or metrics.json.")
    metrics = json.loads(metrics_path.read_text())
    disagreeing = [
        name
        for name, check in metrics.get("tflite_agreement", {}).items()
        if not check.get("argmax_identical")
    ]
    if disagreeing:
        raise RegistrationError(
            f"The exported artifact disagrees with the Keras model on {', '.join(disagreeing)}."
        )
    Predictor(tflite_path)  # refuse an artifact this runtime cannot load

    saved: list[str] = []
    try:
        with transaction.atomic():
            ModelVersion.lock_all()  # another worker may be registering at this moment
            version = ModelVersion(
                version=ModelVersion.next_version(),
                architecture=metrics.get("architecture", "unknown"),
                metrics=metrics,
                note=note,
            )
            with open(tflite_path, "rb") as handle:
                version.tflite.save("model.tflite", File(handle), save=False)
            saved.append(version.tflite.name)
            version.tflite_sha256 = hashlib.sha256(tflite_path.read_bytes()).hexdigest()
            keras_path = directory / "model.keras"
            if keras_path.exists():
                with open(keras_path, "rb") as handle:
                    version.keras.save("model.keras", File(handle), save=False)
                saved.append(version.keras.name)
            pen_path = directory / "pen.tflite"
            if pen_path.exists():
                Predictor(pen_path)  # refuse a pen artifact this runtime cannot load
                with open(pen_path, "rb") as handle:
                    version.pen_tflite.save("pen.tflite", File(handle), save=False)
                saved.append(version.pen_tflite.name)
                version.pen_tflite_sha256 = hashlib.sha256(pen_path.read_bytes()).hexdigest()
                if (directory / "pen.keras").exists():
                    with open(directory / "pen.keras", "rb") as handle:
                        version.pen_keras.save("pen.keras", File(handle), save=False)
                    saved.append(version.pen_keras.name)
            version.plots = []
            for plot in sorted(directory.glob("*.png")):
                name = default_storage.save(
                    artifact_path(version, plot.name), ContentFile(plot.read_bytes())
                )
                saved.append(name)
                version.plots.append(name)
            version.save()
            if activate:
                version.promote(by=by, reason=note or "registered and activated")
    except BaseException:
        for name in saved:  # no row points at them: leave no stray artifacts
            default_storage.delete(name)
        raise
    return version


def ensure_active_model() -> tuple[ModelVersion, bool]:
    """The active version, registering the committed bootstrap model if there is none."""
    active = ModelVersion.active()
    if active is not None:
        return active, False
    for candidate in ModelVersion.objects.exclude(status=ModelVersion.Status.REJECTED):
        if not candidate.artifact_problem():
            candidate.promote(reason="no version was active; the newest usable one was")
            return candidate, False
    version = register_directory(BOOTSTRAP_DIR, activate=True, note=BOOTSTRAP_NOTE)
    return version, True
