"""The pen view: a small sequence model over the pen's path, trained beside the
image model in every run, and the fitted combination of the two.

The picture alone cannot tell a continental 1 from a 7 or a long-slashed 0 from
a 9 when the ink is the same; the order and direction of the strokes can.
Everything with strokes teaches it: the pen digits' training writers and the
UJI training writers (real continental hands), their stroke-space variants and
allographs (made afresh every epoch, never rendered), and contributed drawings
with their strokes. The served answer combines both views with weights fitted
on validation drawings that have both (``classifier.combination``), never a hand-set
weight.

TensorFlow is imported here: only the training worker's child loads this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

import keras
import numpy as np

from classifier import calibration, pen
from classifier import combination as combining
from classifier.predictor import Predictor
from training import strokes as stroke_space
from training.config import TrainConfig
from training.pen_data import (
    JUNK_SHARE,
    PenData,
    PenSet,
    Strokes,
    as_drawn_and_varied,
    at_most,
    junk_strokes,
    limited,
    load_pen_data,
    strokes_digest,
    varied_features,
)
from training.sources import synthetic
from training.sources.cache import cached
from training.sources.variants import synthesis_key

logger = logging.getLogger(__name__)

# The rate a pen model's training starts from (cosine down to 0), and a fine-tune's:
# a fifth of it, as the picture's fine-tune (6e-4) is of its recipe's (3e-3). Small
# steps from weights that already read well: at the new weights' rate, three epochs
# on the refresher unlearnt what the pen view knew (the committed bootstrap's,
# fine-tuned with no contribution: no-digit ink "sure" 1.5 → 3.0 % with both views,
# the weakest style 99.4 → 98.1 %, validation 99.7 → 99.6 %).
LEARNING_RATE = 2e-3
FINETUNE_LEARNING_RATE = LEARNING_RATE / 5


def architecture() -> keras.Model:
    """Convolutions along the path (what the pen did nearby), then pooled over the
    whole drawing: 142,000 weights, about a tenth of a millisecond served."""
    inputs = keras.Input((pen.POINTS, pen.FEATURES), name="pen")
    x = inputs
    for filters, pool in ((64, False), (64, True), (96, False), (96, True), (128, False)):
        x = keras.layers.Conv1D(filters, 5 if filters == 64 else 3, padding="same")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        if pool:
            x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Concatenate()(
        [keras.layers.GlobalMaxPooling1D()(x), keras.layers.GlobalAveragePooling1D()(x)]
    )
    x = keras.layers.Dropout(0.3)(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="digit")(x)
    return keras.Model(inputs, outputs, name="pen")


def fit_pen(
    data: PenData,
    epochs: int,
    *,
    seed: int,
    initial: Path | None = None,
    learning_rate: float = LEARNING_RATE,
    log: Callable[[str], None] = print,
) -> tuple[keras.Model, dict]:
    """Train the pen model (from ``initial``'s weights when given): each epoch sees
    every training drawing once as drawn and once varied, and ink that is no digit
    (:func:`junk_strokes`) with every digit equally likely as its target."""
    rng = np.random.default_rng(seed)
    model = keras.models.load_model(initial) if initial else architecture()
    steps = max(1, int(np.ceil(2 * len(data.train) / 128)))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps * epochs)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=["categorical_accuracy"],
    )
    as_drawn = pen.batch(data.train.strokes)
    targets = np.eye(10, dtype=np.float32)[data.train.labels()]
    weights = np.asarray(data.train.weight, np.float32)
    junk = max(1, int(JUNK_SHARE * 2 * len(data.train)))
    val_x, val_y = pen.batch(data.val.strokes), data.val.labels()
    history: dict[str, list[float]] = {"loss": [], "val_accuracy": []}
    started = time.monotonic()
    for epoch in range(epochs):
        nothing = pen.batch([junk_strokes(rng, data.train) for _ in range(junk)])
        x = np.concatenate([as_drawn, varied_features(data.train, rng), nothing])
        y = np.concatenate([targets, targets, np.full((junk, 10), 0.1, np.float32)])
        w = np.concatenate([weights, weights, np.ones(junk, np.float32)])
        order = rng.permutation(len(x))
        fitted = model.fit(
            x[order], y[order], sample_weight=w[order], batch_size=128, epochs=1, verbose=0
        )
        val_accuracy = (
            float((model.predict(val_x, batch_size=512, verbose=0).argmax(1) == val_y).mean())
            if len(val_y)
            else 0.0
        )
        history["loss"].append(round(float(fitted.history["loss"][-1]), 5))
        history["val_accuracy"].append(round(val_accuracy, 5))
        log(f"pen epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.4f}, "
            f"validation {val_accuracy * 100:.2f}%")  # fmt: skip
    return model, {"history": history, "train_seconds": round(time.monotonic() - started, 1),
                   "n_train": len(data.train), "n_val": len(data.val),
                   "learning_rate": learning_rate,
                   "parameters": int(model.count_params())}  # fmt: skip


def rendered_inputs(sets: Sequence[Strokes]) -> np.ndarray:
    """The drawings as the page draws and the server preprocesses them: the image
    view's inputs for the same drawings, (n, 28, 28) floats (cached: every run
    scores the same held-out writers)."""
    if not len(sets):
        return np.zeros((0, 28, 28), np.float32)
    key = (strokes_digest(sets).hexdigest(), *synthesis_key("pen-rendered"))
    arrays = cached(
        "pen-rendered", key, lambda: {"x": np.stack([stroke_space.render(s) for s in sets])}
    )
    return arrays["x"].astype(np.float32) / 255.0


def both_views(
    image: Predictor, pen_model: Predictor, data: PenSet
) -> tuple[np.ndarray, np.ndarray]:
    """Each view's (calibrated) probabilities for the same drawings."""
    if not len(data):
        return np.zeros((0, 10), np.float32), np.zeros((0, 10), np.float32)
    return image.predict(rendered_inputs(data.strokes)), pen_model.predict(pen.batch(data.strokes))


def report(
    image: Predictor, pen_model: Predictor, combination: dict, tests: Mapping[str, PenSet]
) -> dict:
    """Each view alone and the combination on every test set with strokes: accuracy,
    "sure" answers that are wrong, and misreads flagged "not sure"."""
    out = {}
    for name, test in tests.items():
        if not len(test):
            continue
        p_image, p_pen = both_views(image, pen_model, test)
        labels = test.labels()
        combined = combining.combine(p_image, p_pen, combination)
        sure = combining.sure(p_image, p_pen, combined, combination)
        out[name] = {
            "n": len(labels),
            "image": _scores(p_image, labels, p_image.max(1) >= combination["image_threshold"]),
            "pen": _scores(p_pen, labels, p_pen.max(1) >= combination["pen_threshold"]),
            "combined": _scores(combined, labels, sure),
        }
    return out


def style_sets(limit: int | None, rng: np.random.Generator) -> dict[str, PenSet]:
    """The style test sets' drawings with their strokes (at most ``limit`` each)."""
    return {
        name: at_most(drawn, limit, rng) for name, drawn in synthetic.style_test_strokes().items()
    }


JUNK_TEST = 400  # drawings that are no digit, made afresh (their own seed) for the report


def junk_report(
    image: Predictor, pen_model: Predictor, combination: dict, digits: PenSet, seed: int
) -> dict:
    """How often ink that is no digit (dashes, scribbles, scattered marks, digits
    half drawn) comes back "sure": the picture alone, the pen alone, and both as
    served. Drawings the server refuses as too small or blank are counted apart."""
    from classifier import preprocessing

    rng = np.random.default_rng([seed, 7])
    drawn, pictures, refused = [], [], 0
    for _ in range(JUNK_TEST):
        strokes = junk_strokes(rng, digits)
        try:
            pictures.append(stroke_space.render(strokes))
        except preprocessing.PreprocessingError:
            refused += 1
            continue
        drawn.append(strokes)
    if not drawn:
        return {"n": JUNK_TEST, "refused": refused}
    p_image = image.predict(np.stack(pictures).astype(np.float32) / 255.0)
    p_pen = pen_model.predict(pen.batch(drawn))
    combined = combining.combine(p_image, p_pen, combination)
    return {
        "n": JUNK_TEST,
        "refused": refused,
        "image_sure": round(float((p_image.max(1) >= combination["image_threshold"]).mean()), 4),
        "pen_sure": round(float((p_pen.max(1) >= combination["pen_threshold"]).mean()), 4),
        "combined_sure": round(
            float(combining.sure(p_image, p_pen, combined, combination).mean()), 4
        ),
    }


def _scores(probabilities: np.ndarray, labels: np.ndarray, sure: np.ndarray) -> dict:
    right = probabilities.argmax(1) == labels
    wrong = ~right
    return {
        "accuracy": round(float(right.mean()), 5),
        "sure_but_wrong": round(float((sure & wrong).sum() / max(1, sure.sum())), 5),
        "misreads_flagged": round(float((~sure & wrong).sum() / wrong.sum()), 4)
        if wrong.any()
        else None,
    }


JUNK_FIT = 400  # drawings that are no digit among those the combination is fitted on


def fit_combination(
    image: Predictor, pen_model: Predictor, val: PenSet, seed: int = 0, junk_weight: float = 0.01
) -> dict:
    """The combination's weights and "not sure" threshold, fitted on validation
    drawings with both views (``classifier.combination``) and on ink that is no
    digit, made from them (its own seed: not the report's)."""
    from classifier import preprocessing

    rng = np.random.default_rng([seed, 11])
    junk = PenSet()
    while len(junk) < JUNK_FIT:
        strokes = junk_strokes(rng, val)
        try:
            stroke_space.render(strokes)  # what the server would refuse is never asked
        except preprocessing.PreprocessingError:
            continue
        junk.add(strokes, 0, group="no digit")
    fitting = PenSet(
        [*val.strokes, *junk.strokes], [*val.y, *[combining.NO_DIGIT] * len(junk)],
        [*val.weight, *junk.weight], [*val.group, *junk.group],
    )  # fmt: skip
    p_image, p_pen = both_views(image, pen_model, fitting)
    labels = fitting.labels()
    digits = labels >= 0
    # Each collection of writers counts the same (the pen digits' validation writers
    # are more like their training writers than the world is, and would have the
    # pen trusted more than it should be); ink that is no digit counts
    # ``junk_weight`` of the digits: enough to keep both views' doubts from adding
    # up to certainty (the bootstrap's views: 19 % of such ink "sure" without it,
    # 2 % with it, digits read as well), little enough to keep digits sharp (as a
    # group of its own, a third, it made every answer soft).
    weights = fitting.group_weights()
    weights[~digits] *= junk_weight * weights[digits].sum() / weights[~digits].sum()
    fitted = combining.fit(p_image, p_pen, labels, weights)
    fitted["image_threshold"] = calibration.choose_threshold(p_image[digits], labels[digits])[
        "threshold"
    ]
    fitted["pen_temperature"] = pen_model.temperature
    fitted["pen_threshold"] = calibration.choose_threshold(p_pen[digits], labels[digits])[
        "threshold"
    ]
    fitted["fitted_on"] = (
        f"validation drawings with strokes, as drawn and varied ({int(digits.sum())}), "
        f"and ink that is no digit ({len(junk)})"
    )
    fitted["features_version"] = pen.PEN_FEATURES_VERSION
    return fitted


# Epochs of the pen view: from new weights, and when fine-tuning the active
# version's pen model (a smoke run with ``limit`` trains one).
EPOCHS_NEW = 16
EPOCHS_FINETUNE = 3
# A fine-tune starts from a pen model that has seen every pen digit: it trains on
# the contributions (all of them) and this many of the others, lest it forget
# them, which keeps the loop's retrain short.
REFRESHER = 2500


def refresher(train: PenSet, rng: np.random.Generator) -> PenSet:
    """What a fine-tune of the pen view trains on: every contributed drawing (the
    ``drawings`` group) and ``REFRESHER`` of the rest, drawn at random."""
    groups = np.asarray(train.group)
    contributed = np.flatnonzero(groups == "drawings")
    others = np.flatnonzero(groups != "drawings")
    if len(others) > REFRESHER:
        others = rng.choice(others, REFRESHER, replace=False)
    return train.subset(sorted([*contributed.tolist(), *others.tolist()]))


def answers(image: Predictor, pen_model: Predictor | None, combination: dict | None,
            data: PenSet) -> np.ndarray:  # fmt: skip
    """A version's served digits for drawings with strokes: both views combined, or
    the picture alone for a version without a pen view."""
    if pen_model is None or not combination:
        return (
            image.predict(rendered_inputs(data.strokes)).argmax(1)
            if len(data)
            else np.zeros(0, int)
        )
    p_image, p_pen = both_views(image, pen_model, data)
    return combining.combine(p_image, p_pen, combination).argmax(1)


def train_view(
    config: TrainConfig,
    out_dir: Path,
    image_tflite: Path,
    image_temperature: float,
    initial: Path | None = None,
    log: Callable[[str], None] = print,
    *,
    export: Callable[[keras.Model, Path], bytes],
    sources: Collection[str] | None = None,
) -> tuple[dict, PenData]:
    """Train, export and calibrate the pen view, fit the combination with the run's
    image model, and report each view and both on every test set with strokes.
    Writes ``pen.keras`` and ``pen.tflite`` beside the image model; returns the
    metrics (``metrics["pen"]``) and the pen data (for the gate's answers).
    ``export`` writes the served artifact (the trainer's, so both views are
    exported alike). ``sources``: what the run's image data held (the trainer's
    manifest): the pen view trains on the same sources."""
    rng = np.random.default_rng(config.seed)
    data = limited(load_pen_data(config, sources), config.limit, rng)
    if not len(data.train):
        return {}, data
    # As many epochs as the picture's, up to the pen view's own: a one-epoch smoke
    # run trains one, the bootstrap recipe EPOCHS_NEW, a fine-tune EPOCHS_FINETUNE.
    epochs = min(config.epochs, EPOCHS_FINETUNE if initial else EPOCHS_NEW)
    training = data.train if initial is None else refresher(data.train, rng)
    model, fitted = fit_pen(
        PenData(training, data.val, data.tests),
        epochs,
        seed=config.seed,
        initial=initial,
        learning_rate=FINETUNE_LEARNING_RATE if initial else LEARNING_RATE,
        log=log,
    )
    # The weights alone (no optimiser state: a third of the size); a fine-tune
    # compiles its own.
    kept = architecture()
    kept.set_weights(model.get_weights())
    kept.save(out_dir / "pen.keras")
    export(model, out_dir / "pen.tflite")
    raw = Predictor(out_dir / "pen.tflite")
    fitting = as_drawn_and_varied(data.val, np.random.default_rng(config.seed + 1))
    temperature = (
        calibration.fit_temperature(raw.predict(pen.batch(fitting.strokes)), fitting.labels())
        if len(fitting)
        else 1.0
    )
    pen_model = Predictor(out_dir / "pen.tflite", temperature=temperature)
    image = Predictor(image_tflite, temperature=image_temperature)
    combination = fit_combination(image, pen_model, fitting, config.seed)
    reports = report(image, pen_model, combination, data.tests)
    # The style test sets as the page sends them (the picture and its strokes): a
    # family the picture confuses (a long-flagged 1 and a 7) is what the pen is for.
    drawn_styles = (
        style_sets(config.limit, rng)
        if "pendigits" in (config.sources if sources is None else sources)
        else {}
    )
    styles = report(image, pen_model, combination, drawn_styles)
    # Probes are kept out of training on purpose: shown, not the weakest.
    taught = {name: scores for name, scores in styles.items() if not name.startswith("probe:")}
    not_digits = junk_report(image, pen_model, combination, data.val, config.seed)
    log(f"no digit ({not_digits['n']}, {not_digits['refused']} refused as too small): sure "
        f"{not_digits.get('image_sure', 0) * 100:.1f}% picture alone, "
        f"{not_digits.get('pen_sure', 0) * 100:.1f}% pen alone, "
        f"{not_digits.get('combined_sure', 0) * 100:.1f}% both")  # fmt: skip
    for name, scores in reports.items():
        picture, alone, both = (scores[v]["accuracy"] * 100 for v in ("image", "pen", "combined"))
        log(f"{name}: picture {picture:.2f}%, pen {alone:.2f}%, both {both:.2f}%")
    if taught:
        weakest = min(taught, key=lambda name: taught[name]["combined"]["accuracy"])
        both = taught[weakest]["combined"]["accuracy"] * 100
        log(f"styles and their held-out bands ({len(taught)} sets): the weakest with both "
            f"views is {weakest}, {both:.2f}%")  # fmt: skip
    metrics = {
        **fitted,
        "epochs": epochs,
        "started_from": "active model" if initial else "new weights",
        "features": {
            "points": pen.POINTS,
            "features": pen.FEATURES,
            "version": pen.PEN_FEATURES_VERSION,
        },
        "combination": combination,
        "tests": reports,
        "styles": styles,
        "not_digits": not_digits,
        "tflite_bytes": (out_dir / "pen.tflite").stat().st_size,
    }
    # The gate judges the style sets as served too (``styles+pen``).
    return metrics, PenData(data.train, data.val, {**data.tests, **drawn_styles})
