"""The per-process cache of the active model, hot-swapped when another is promoted.

The web process never imports TensorFlow: a TFLite flatbuffer and LiteRT's
small interpreter (``classifier.predictor``) answer one drawing in about a
millisecond, where Keras' ``model.predict`` takes tens (see ``benchmarks/``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from classifier.models import ArtifactError, ModelVersion
from classifier.predictor import Predictor
from digits_site.refusals import Refused

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    version_id: int
    version: int
    predictor: Predictor
    threshold: float | None  # the version's "not sure" threshold (None: the setting's)
    pen: Predictor | None = None  # the pen view, for versions that have one
    combination: dict | None = None  # how the two views are combined


class NoActiveModel(Refused, RuntimeError):
    """There is no model to answer with (run ``manage.py ensure_model``); an API
    answers 503."""

    status = 503
    code = "unavailable"


# A version that failed to load is tried again this often (seconds), not on every
# check: the file may be restored, but a broken one should not be re-read and
# re-logged every couple of seconds by every web process.
RETRY_FAILED_SECONDS = 30.0

_lock = threading.Lock()
_current: LoadedModel | None = None
_checked_at = 0.0
_failed_at: dict[int, float] = {}


def _load(version: ModelVersion) -> LoadedModel:
    """Load one version, or raise ``ArtifactError`` saying why (the admin's words)."""
    pen = version.load_pen_predictor()
    return LoadedModel(
        version.id,
        version.version,
        version.load_predictor(),
        version.confidence_threshold,
        pen,
        version.combination if pen is not None else None,
    )


def _fallback(broken_id: int) -> LoadedModel | None:
    """The most recently active version that still loads (a process that starts
    while the active artifact is broken still answers)."""
    for version in ModelVersion.previously_active(exclude_id=broken_id)[:5]:
        try:
            return _load(version)
        except ArtifactError:
            continue
    return None


def active_model() -> LoadedModel:
    """The active version, loaded once per process and swapped when another is promoted.

    At most every ``DIGITS_MODEL_CHECK_SECONDS`` a cheap query compares the active
    version id with the one in memory. If the active artifact cannot be loaded,
    the previous model keeps answering (a fresh process falls back to the most
    recently active one that loads) and the reason is recorded on the version,
    where the admin shows it.
    """
    global _current, _checked_at
    now = time.monotonic()
    if _current is not None and now - _checked_at < settings.DIGITS_MODEL_CHECK_SECONDS:
        return _current
    with _lock:
        if _current is not None and now - _checked_at < settings.DIGITS_MODEL_CHECK_SECONDS:
            return _current
        active_id = (
            ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE)
            .values_list("id", flat=True)
            .first()
        )
        _checked_at = now
        if active_id is None:
            if _current is None:
                raise NoActiveModel("No model is active yet; run `python manage.py ensure_model`.")
            return _current
        if _current is not None and _current.version_id == active_id:
            return _current
        failed_at = _failed_at.get(active_id)
        recently_failed = failed_at is not None and now - failed_at < RETRY_FAILED_SECONDS
        if recently_failed and _current is not None:
            return _current
        version = ModelVersion.objects.get(id=active_id)
        try:
            loaded = _load(version)
        except ArtifactError as exc:
            if not recently_failed:  # record and log once per retry, not per request
                _failed_at[active_id] = now
                version.record_serving_error(str(exc))
                logger.error("Could not load model version %s: %s", version.version, exc)
            fallback = _current or _fallback(active_id)
            if fallback is None:
                raise NoActiveModel(
                    f"The active model (version {version.version}) cannot be loaded and no "
                    f"earlier version can stand in: {exc}"
                ) from exc
            logger.warning("Serving version %s instead.", fallback.version)
            _current = fallback
            return _current
        _failed_at.pop(active_id, None)
        version.clear_serving_error()
        _current = loaded
        logger.info("Serving model version %s.", version.version)
        return _current


def reset() -> None:
    """Forget the loaded model (tests, and after a restore)."""
    global _current, _checked_at
    with _lock:
        _current = None
        _checked_at = 0.0
        _failed_at.clear()
