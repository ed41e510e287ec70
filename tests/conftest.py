"""Shared fixtures: real datasets from ../shared, the committed bootstrap model,
and canvas PNGs rendered from real pen strokes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session", autouse=True)
def _datasets_from_files_only():
    """Tests read datasets from files, never from the network (see settings)."""
    from django.conf import settings

    assert settings.DIGITS_MNIST_DIR and Path(settings.DIGITS_MNIST_DIR).is_dir(), (
        "Set DIGITS_MNIST_DIR to the folder with MNIST's four .gz files."
    )


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Each test writes model artifacts and drawings into its own folder, and
    starts with no model loaded in this process."""
    from classifier import runtime

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DIGITS_MODEL_CHECK_SECONDS = 0
    runtime.reset()
    yield
    runtime.reset()


@pytest.fixture
def active_model(db):
    """The committed bootstrap model, registered exactly as ``make run`` does."""
    from classifier.registry import ensure_active_model

    version, created = ensure_active_model()
    assert created
    return version


@pytest.fixture(scope="session")
def pen_digits():
    from training import datasets

    return datasets.load_pendigit_strokes()


@pytest.fixture(scope="session")
def unseen_pen_digits(pen_digits):
    """Digits by writers no shipped model trained on, two per class per writer at most."""
    from training import datasets

    chosen, seen = [], {}
    for digit in pen_digits:
        if digit.writer not in datasets.PENDIGITS_TEST_WRITERS:
            continue
        key = (digit.writer, digit.label)
        if seen.get(key, 0) < 2:
            seen[key] = seen.get(key, 0) + 1
            chosen.append(digit)
    return chosen


@pytest.fixture
def canvas_png(pen_digits):
    """A function: (label, index) → the canvas PNG that a person the models never
    saw sends when drawing that digit."""
    from training import datasets

    by_label: dict[int, list] = {}
    for digit in pen_digits:
        if digit.writer not in datasets.PENDIGITS_TEST_WRITERS:
            continue
        by_label.setdefault(digit.label, []).append(digit)

    def make(label: int = 7, index: int = 0, size: float = datasets.DEFAULT_RENDER_SIZE) -> bytes:
        return datasets.render_pendigit(by_label[label][index], size)

    return make
