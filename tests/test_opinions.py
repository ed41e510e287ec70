"""The gate's opinions: a model's answers on a test set are computed once and
remembered by the model's checksums and the set's content."""

from __future__ import annotations

import numpy as np
import pytest

from classifier.registry import BOOTSTRAP_DIR, register_directory
from training import opinions
from training.pen_data import PenSet
from training.sources.base import Images


@pytest.fixture
def own_cache(settings, tmp_path):
    settings.DIGITS_DATA_DIR = tmp_path


def _sets(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    pictures = Images(rng.integers(0, 255, (20, 28, 28), dtype=np.uint8),
                      rng.integers(0, 10, 20).astype(np.uint8))  # fmt: skip
    drawings = PenSet()
    for label in range(3):
        drawings.add([rng.random((5, 3)) * 100], label)
    return {"mnist-test": pictures, "ujipen+pen": drawings}


def test_a_models_answers_are_computed_once_per_set(own_cache):
    calls = []

    def answer(missing):
        calls.append(sorted(missing))
        return {name: np.full(len(data), 7) for name, data in missing.items()}

    sets = _sets()
    first = opinions.recalled("model-a", sets, answer)
    again = opinions.recalled("model-a", sets, answer)
    assert calls == [["mnist-test", "ujipen+pen"]]
    assert all((first[n] == again[n]).all() and (again[n] == 7).all() for n in sets)

    # A set whose content changed (a new contributor's drawings) is answered
    # again; the others are not. Another model answers everything itself.
    changed = {**sets, "ujipen+pen": _sets(seed=1)["ujipen+pen"]}
    opinions.recalled("model-a", changed, answer)
    opinions.recalled("model-b", sets, answer)
    assert calls[1:] == [["ujipen+pen"], ["mnist-test", "ujipen+pen"]]


def test_without_a_key_nothing_is_remembered(own_cache):
    calls = []

    def answer(missing):
        calls.append(1)
        return {name: np.zeros(len(data), int) for name, data in missing.items()}

    opinions.recalled(None, _sets(), answer)
    opinions.recalled(None, _sets(), answer)
    assert len(calls) == 2


def test_the_key_follows_everything_that_decides_the_answers():
    base = opinions.model_key("a" * 64, 1.2, "b" * 64, {"a": 1.0})
    assert base == opinions.model_key("a" * 64, 1.2, "b" * 64, {"a": 1.0})
    assert base != opinions.model_key("c" * 64, 1.2, "b" * 64, {"a": 1.0})
    assert base != opinions.model_key("a" * 64, 1.3, "b" * 64, {"a": 1.0})
    assert base != opinions.model_key("a" * 64, 1.2, "", {"a": 1.0})
    assert base != opinions.model_key("a" * 64, 1.2, "b" * 64, {"a": 0.9})


@pytest.mark.django_db
def test_a_promoted_candidates_answers_are_the_next_gates_active_opinion(own_cache):
    """What the candidate answered in its run is what the gate of the next run
    takes as the serving model's answers, without scoring it again."""
    version = register_directory(BOOTSTRAP_DIR, activate=True, note="training run 1")
    sets = _sets()
    remembered = {name: np.arange(len(data)) % 10 for name, data in sets.items()}
    opinions.remember(opinions.version_key(version), sets, remembered)

    active, bootstrap = opinions.gate_opinions(sets)
    assert all((active[name] == remembered[name]).all() for name in sets)
    # This version is the bootstrap's artifacts: the same key, the same answers.
    assert all((bootstrap[name] == remembered[name]).all() for name in sets)


@pytest.mark.django_db
def test_the_bootstrap_is_scored_once_then_remembered(own_cache):
    sets = _sets()
    active, bootstrap = opinions.gate_opinions(sets)
    assert active is None
    shipped = register_directory(BOOTSTRAP_DIR, activate=False, note="the same files")
    scored = opinions.answered(shipped.load_predictor(), shipped.load_pen_predictor(),
                               shipped.combination, sets)  # fmt: skip
    assert all((bootstrap[name] == scored[name]).all() for name in sets)
    key = opinions.version_key(shipped)
    assert all(
        opinions.cache_file("answers", (key, opinions.set_digest(data))).exists()
        for data in sets.values()
    )
