"""Evaluation reports: numbers (JSON) and pictures (PNG).

Metrics are plain NumPy over predicted probabilities, so the same code scores
a Keras model in a training run and the LiteRT artifact the web serves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NUM_CLASSES = 10


def classification_report(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(probabilities).argmax(axis=1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    true_pos = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(true_pos, predicted, out=np.zeros_like(true_pos), where=predicted > 0)
    recall = np.divide(true_pos, actual, out=np.zeros_like(true_pos), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(true_pos), where=denominator > 0
    )
    n = len(y_true)
    return {
        "n": n,
        "accuracy": float(true_pos.sum() / n) if n else 0.0,
        "per_class": {
            str(c): {
                "precision": round(float(precision[c]), 5),
                "recall": round(float(recall[c]), 5),
                "f1": round(float(f1[c]), 5),
                "support": int(actual[c]),
            }
            for c in range(NUM_CLASSES)
        },
        "confusion": confusion.tolist(),
    }


def answers(predictor, tests: dict) -> dict[str, np.ndarray]:
    """A served model's (``classifier.predictor.Predictor``) probabilities on each test
    set (``name → Images``), through the same path as a request: the one way
    test sets are scored."""
    from classifier import serving

    return {
        name: serving.classify(images.as_inputs(), predictor).probabilities
        for name, images in tests.items()
    }


def score(predictor, tests: dict) -> dict[str, dict]:
    """The model's report on each test set (``name → Images``)."""
    return {
        name: classification_report(tests[name].y, probabilities)
        for name, probabilities in answers(predictor, tests).items()
    }


def format_report(name: str, report: dict) -> str:
    """The report as a terminal table, sklearn-style."""
    lines = [f"== {name}: accuracy {report['accuracy'] * 100:.2f}% on {report['n']} images", ""]
    lines.append("digit  precision  recall     f1  support")
    for digit, row in report["per_class"].items():
        lines.append(
            f"{digit:>5}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:5.4f}  "
            f"{row['support']:7d}"
        )
    lines += ["", "confusion (rows: true digit, columns: predicted)"]
    lines.append("      " + " ".join(f"{c:>5}" for c in range(NUM_CLASSES)))
    for digit, row in enumerate(report["confusion"]):
        lines.append(f"{digit:>5} " + " ".join(f"{v:>5}" for v in row))
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and workers
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(history: dict, path: Path) -> None:
    plt = _pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = range(1, len(history.get("loss", [])) + 1)
    for key, axis in (("loss", loss_ax), ("accuracy", acc_ax)):
        axis.plot(epochs, history.get(key, []), label="train")
        if f"val_{key}" in history:
            axis.plot(epochs, history[f"val_{key}"], label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(report: dict, title: str, path: Path) -> None:
    plt = _pyplot()
    confusion = np.asarray(report["confusion"])
    fig, axis = plt.subplots(figsize=(5.2, 4.6))
    # Log colour scale: the diagonal would otherwise wash out every mistake.
    image = axis.imshow(np.log1p(confusion), cmap="Blues")
    for (row, col), value in np.ndenumerate(confusion):
        if value:
            colour = "white" if value > confusion.max() / 3 else "black"
            axis.text(col, row, str(value), ha="center", va="center", fontsize=7, color=colour)
    axis.set_xticks(range(NUM_CLASSES))
    axis.set_yticks(range(NUM_CLASSES))
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"{title}: {report['accuracy'] * 100:.2f}%")
    fig.colorbar(image, ax=axis, fraction=0.046, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_misclassified(
    images: np.ndarray,
    y_true: np.ndarray,
    probabilities: np.ndarray,
    title: str,
    path: Path,
    limit: int = 40,
) -> None:
    """The most confident mistakes first: those are mislabels or real blind spots."""
    plt = _pyplot()
    y_pred = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    wrong = wrong[np.argsort(-probabilities[wrong, y_pred[wrong]])][:limit]
    columns = 10
    rows = max(1, int(np.ceil(len(wrong) / columns)))
    # One picture of all the mistakes side by side, each captioned: forty axes
    # laid out by matplotlib would cost most of a second per test set, every run.
    width, height = 32, 42  # a cell: the digit under its caption
    sheet = np.zeros((rows * height, columns * width), np.float32)
    for place, index in enumerate(wrong):
        top, left = (place // columns) * height + 12, (place % columns) * width + 2
        sheet[top : top + 28, left : left + 28] = images[index].reshape(28, 28)
    inches = rows * 1.1 * height / width
    fig = plt.figure(figsize=(columns * 1.1, inches + 0.4))
    axis = fig.add_axes((0.01, 0.01, 0.98, 0.98 - 0.4 / (inches + 0.4)))
    axis.imshow(sheet, cmap="gray_r", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    axis.axis("off")
    for place, index in enumerate(wrong):
        top, left = (place // columns) * height, (place % columns) * width
        axis.text(left + width / 2, top + 10,
                  f"{y_true[index]}→{y_pred[index]} {probabilities[index, y_pred[index]]:.2f}",
                  fontsize=7, ha="center", va="bottom")  # fmt: skip
    fig.suptitle(f"{title}: {len(np.flatnonzero(y_pred != y_true))} misclassified (true→predicted)")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_styles(reports: dict[str, dict], path: Path) -> None:
    """Accuracy per handwriting style (``style:*``, and the ``probe:*`` styles kept
    out of training), one bar each: the style test set at a glance."""
    plt = _pyplot()
    names = [n for n in reports if n.startswith(("style:", "disjoint:", "probe:"))]
    if not names:
        return
    values = [reports[n]["accuracy"] * 100 for n in names]
    fig, axis = plt.subplots(figsize=(7.5, 0.32 * len(names) + 1.2))
    colours = ["#888" if n.startswith("probe:") else "#2a6fdb" for n in names]
    axis.barh(range(len(names)), values, color=colours)
    axis.set_yticks(range(len(names)), [n.split(":", 1)[1] for n in names], fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, 100)
    axis.axvline(98, color="#c33", lw=0.8, ls="--")
    for i, v in enumerate(values):
        axis.text(min(v, 88) + 1, i, f"{v:.1f}%", va="center", fontsize=7)
    axis.set_xlabel("accuracy on held-out writers (%) — grey: probes, never trained on")
    axis.set_title("Handwriting styles")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
