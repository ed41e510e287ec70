"""training.evaluation: the numbers and pictures every model version is judged by."""

from __future__ import annotations

import numpy as np
import pytest

from training import evaluation


def one_hot(predicted: list[int]) -> np.ndarray:
    return np.eye(10)[predicted]


def test_accuracy_precision_recall_f1_and_confusion_by_hand():
    # given 3s and 5s, one 3 read as a 5 and one 5 read as an 8
    y_true = [3, 3, 3, 3, 5, 5]
    predicted = [3, 3, 3, 5, 5, 8]
    report = evaluation.classification_report(np.array(y_true), one_hot(predicted))
    assert report["n"] == 6 and report["accuracy"] == pytest.approx(4 / 6)
    three, five, eight = (report["per_class"][d] for d in ("3", "5", "8"))
    assert three == {"precision": 1.0, "recall": 0.75, "f1": pytest.approx(0.85714), "support": 4}
    assert five == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    # a digit never present and never predicted, or only predicted, scores 0, not NaN
    assert eight == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["per_class"]["0"]["f1"] == 0.0
    confusion = np.array(report["confusion"])
    assert confusion[3, 3] == 3 and confusion[3, 5] == 1 and confusion[5, 8] == 1
    assert confusion.sum() == 6


def test_an_empty_test_set_has_no_accuracy_to_divide_by():
    report = evaluation.classification_report(np.zeros(0, int), np.zeros((0, 10)))
    assert report["n"] == 0 and report["accuracy"] == 0.0


def test_the_terminal_table_shows_every_digit_and_the_matrix():
    report = evaluation.classification_report(np.arange(10), one_hot(list(range(10))))
    text = evaluation.format_report("mnist-test", report)
    assert text.startswith("== mnist-test: accuracy 100.00% on 10 images")
    assert sum(1 for line in text.splitlines() if line.endswith("      1")) == 10


def test_the_plots_are_written(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 50)
    probabilities = rng.dirichlet(np.ones(10), 50)
    report = evaluation.classification_report(y, probabilities)
    evaluation.plot_confusion(report, "t", tmp_path / "confusion.png")
    evaluation.plot_misclassified(
        rng.random((50, 28, 28)), y, probabilities, "t", tmp_path / "m.png"
    )
    evaluation.plot_learning_curves(
        {"loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "accuracy": [0.5, 0.8]}, tmp_path / "c.png"
    )
    for name in ("confusion.png", "m.png", "c.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
