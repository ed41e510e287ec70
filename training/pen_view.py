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

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from classifier import calibration, canvas, pen
from classifier import combination as combining
from classifier.predictor import Predictor
from collector.formats import DatasetError
from training import allographs
from training import strokes as stroke_space
from training.config import TrainConfig
from training.sources.cache import cached
from training.sources.variants import synthesis_key

Strokes = list[np.ndarray]
logger = logging.getLogger(__name__)
# How much more a UJI training writer's digit, and a contributed drawing, counts
# than a pen-digit writer's: real hands unlike the pen digits' are few.
UJI_WEIGHT = 3.0
CONTRIBUTED_WEIGHT = 3.0


@dataclass
class PenSet:
    """Labelled drawings as strokes (canvas pixels, the page's coordinates)."""

    strokes: list[Strokes] = field(default_factory=list)
    y: list[int] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    group: list[str] = field(default_factory=list)  # which collection of writers

    def __len__(self) -> int:
        return len(self.y)

    def add(self, strokes: Strokes, label: int, weight: float = 1.0, group: str = "") -> None:
        self.strokes.append(strokes)
        self.y.append(int(label))
        self.weight.append(float(weight))
        self.group.append(group)

    def group_weights(self) -> np.ndarray:
        """Per drawing, so that each collection of writers counts the same in all."""
        groups = np.asarray(self.group)
        out = np.ones(len(groups))
        for name in set(self.group):
            out[groups == name] = len(groups) / (len(set(self.group)) * (groups == name).sum())
        return out

    def labels(self) -> np.ndarray:
        return np.asarray(self.y, np.int64)


@dataclass
class PenData:
    train: PenSet
    val: PenSet
    tests: dict[str, PenSet]


def load_pen_data(config: TrainConfig) -> PenData:
    """Every source with strokes, split by writer as the image sources are: the pen
    digits' and UJI's training writers (and contributed training drawings) train
    (UJI's whenever the run trains on pen digits: real continental hands are what
    the pen view needs most);
    their validation writers (and contributed validation drawings) fit the
    combination; their test writers and the contributed test drawings are the
    test sets ``pendigits``, ``ujipen`` and ``drawings-test``, the same images the
    image view is scored on."""
    from collector.models import Drawing
    from training.sources import drawings as drawing_source
    from training.sources import pendigits, ujipen

    train, val = PenSet(), PenSet()
    tests: dict[str, PenSet] = {}
    held_out = pendigits.PENDIGITS_TEST_WRITERS | pendigits.PENDIGITS_VAL_WRITERS
    if "pendigits" in config.sources:
        tests["pendigits"] = PenSet()
        for digit in pendigits.load_pendigit_strokes():
            strokes = canvas.fit_to_canvas(digit.strokes)
            if digit.writer in pendigits.PENDIGITS_TEST_WRITERS:
                tests["pendigits"].add(strokes, digit.label)
            elif digit.writer in held_out:
                val.add(strokes, digit.label, group="pendigits")
            else:
                train.add(strokes, digit.label)
    try:
        uji = ujipen.load_ujipen_strokes()
    except DatasetError as exc:  # the image side reports the missing file
        logger.warning("The pen view goes without the UJI writers: %s", exc)
        uji = []
    if uji:
        tests["ujipen"] = PenSet()
        for digit in uji:
            role = ujipen.role(digit.writer)
            target = {"train": train, "val": val, "test": tests["ujipen"]}[role]
            if role == "train" and not {"ujipen", "pendigits"} & set(config.sources):
                continue  # a run without pen sources still judges on the held-out writers
            # Real continental hands are few beside the pen digits' 30 writers.
            weight = UJI_WEIGHT if role == "train" else 1.0
            target.add(ujipen.on_canvas(digit), digit.label, weight, group="ujipen")
    if "drawings" in config.sources:
        rows = (
            Drawing.objects.filter(status=Drawing.Status.APPROVED)
            .exclude(strokes=None)
            .exclude(source=drawing_source.PENDIGITS_IMPORT)
        )
        contributed_test = PenSet()
        for drawing in rows.order_by("id").iterator(chunk_size=1000):
            try:
                strokes = canvas.parse_strokes(drawing.strokes)
            except canvas.InvalidStrokes:  # stored before today's rules: its picture only
                continue
            if drawing.split == Drawing.Split.TEST:
                contributed_test.add(strokes, drawing.label)
            elif drawing.split == Drawing.Split.VAL:
                val.add(strokes, drawing.label, group="drawings")
            else:
                weight = config.correction_weight if drawing.source == "correction" else 1.0
                train.add(strokes, drawing.label, weight * CONTRIBUTED_WEIGHT)
        if len(contributed_test):
            tests["drawings-test"] = contributed_test
    return PenData(train, val, tests)


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


def rewritten(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """The same drawing written in another order, as people do: a closed loop (a 0,
    an 8) begun at another point, a stroke drawn the other way, strokes in another
    order. The shape stays; what the pen view may take for granted about order and
    direction does not, so one writer's habit is not mistaken for the digit."""
    out = []
    for stroke in strokes:
        if len(stroke) > 8 and rng.random() < 0.3:
            extent = float(np.ptp(stroke[:, :2], axis=0).max()) or 1.0
            if np.linalg.norm(stroke[0, :2] - stroke[-1, :2]) < 0.25 * extent:  # a loop
                stroke = np.roll(stroke[:-1], int(rng.integers(1, len(stroke) - 1)), axis=0)
        if rng.random() < 0.12:
            stroke = stroke[::-1]
        out.append(stroke)
    if len(out) > 1 and rng.random() < 0.15:
        out = [out[i] for i in rng.permutation(len(out))]
    return out


# Ink that is not a digit (yet) is trained towards "any digit, equally": a share of
# every epoch, so the pen view says "I cannot tell" where the picture alone might
# say "8, 99.9 %" (a dash, a scribble, a digit half drawn).
JUNK_SHARE = 0.08


def junk_strokes(rng: np.random.Generator, digits: PenSet | None = None) -> Strokes:
    """One drawing that is no digit, in canvas pixels: a dash or a slash (never near
    upright: that is a 1), a scribble, a few scattered marks, or the first part of
    a real drawing of any digit but 1 (what the page sends mid-stroke)."""
    kind = int(rng.integers(4 if digits is not None and len(digits) else 3))
    centre = rng.uniform(70, 186, 2)
    size = rng.uniform(60, 200)
    if kind == 0:  # a straight line, 0° to 55° off horizontal, either way, either slope
        angle = np.radians(rng.uniform(0, 55)) * rng.choice([-1, 1])
        half = size / 2 * np.array([np.cos(angle), np.sin(angle)])
        line = np.linspace(-1, 1, int(rng.integers(8, 40)))[:, None] * half + centre
        return [line if rng.random() < 0.5 else line[::-1]]
    if kind == 1:  # a scribble: a smooth random walk that crosses itself
        steps = rng.normal(0, 1, (int(rng.integers(30, 90)), 2)).cumsum(axis=0)
        steps = np.cumsum(steps - steps.mean(axis=0), axis=0)
        extent = float(np.ptp(steps, axis=0).max()) or 1.0
        return [(steps - steps.mean(axis=0)) / extent * size + centre]
    if kind == 2:  # a few short marks scattered about
        marks = []
        for _ in range(int(rng.integers(3, 7))):
            start = rng.uniform(30, 226, 2)
            marks.append(np.linspace(start, start + rng.normal(0, 12, 2), 5))
        return marks
    # the first 15 to 45 % of a real drawing's path; never one that is a tall, narrow
    # stroke (the start of a 4 or a 5 is a 1 as far as anyone can tell)
    for _ in range(20):
        part = _first_part(digits, rng)
        points = np.concatenate(part)
        width, height = np.ptp(points, axis=0)
        if width > 0.5 * height:
            return part
    return junk_strokes(rng)


def _first_part(digits: PenSet, rng: np.random.Generator) -> Strokes:
    index = int(rng.integers(len(digits)))
    while digits.y[index] == 1:
        index = int(rng.integers(len(digits)))
    strokes = [np.asarray(s, np.float64)[:, :2] for s in digits.strokes[index] if len(s)]
    lengths = [float(np.linalg.norm(np.diff(s, axis=0), axis=1).sum()) for s in strokes]
    budget = sum(lengths) * rng.uniform(0.15, 0.45)
    out = []
    for stroke, length in zip(strokes, lengths, strict=True):
        if budget <= 0:
            break
        if length <= budget:
            out.append(stroke)
        else:
            along = np.concatenate(
                [[0.0], np.linalg.norm(np.diff(stroke, axis=0), axis=1).cumsum()]
            )
            out.append(stroke[: max(2, int(np.searchsorted(along, budget)))])
        budget -= length
    return out


def varied_features(data: PenSet, rng: np.random.Generator, style_share: float = 0.2) -> np.ndarray:
    """One fresh stroke-space variant of every training drawing (some in another
    style of their digit, some written in another order), as pen features: an
    epoch's inputs."""
    out = np.empty((len(data), pen.POINTS, pen.FEATURES), np.float32)
    for i, (strokes, label) in enumerate(zip(data.strokes, data.y, strict=True)):
        drawn = list(strokes)
        styles = allographs.styles_of(label)
        try:
            if styles and rng.random() < style_share:
                drawn = styles[int(rng.integers(len(styles)))].make(drawn, rng)
            drawn, _ = stroke_space.vary(drawn, rng)
            drawn = rewritten(drawn, rng)
        except (ValueError, IndexError, FloatingPointError):
            drawn = list(strokes)  # strokes too odd to vary: as drawn
        out[i] = pen.features(drawn)
    return out


def fit_pen(
    data: PenData,
    epochs: int,
    *,
    seed: int,
    initial: Path | None = None,
    learning_rate: float = 2e-3,
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
                   "parameters": int(model.count_params())}  # fmt: skip


def rendered_inputs(sets: Sequence[Strokes]) -> np.ndarray:
    """The drawings as the page draws and the server preprocesses them: the image
    view's inputs for the same drawings, (n, 28, 28) floats (cached: every run
    scores the same held-out writers)."""
    if not len(sets):
        return np.zeros((0, 28, 28), np.float32)
    digest = hashlib.sha256()
    for strokes in sets:
        for stroke in strokes:
            digest.update(np.ascontiguousarray(stroke[:, :2], np.float64).tobytes())
        digest.update(b"|")
    key = (digest.hexdigest(), *synthesis_key("pen-rendered"))
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


def report(image: Predictor, pen_model: Predictor, combination: dict, data: PenData) -> dict:
    """Each view alone and the combination on every test set with strokes: accuracy,
    "sure" answers that are wrong, and misreads flagged "not sure"."""
    out = {}
    for name, test in data.tests.items():
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


VARIED_COPIES = 2  # varied copies of each validation drawing the combination is fitted on


def as_drawn_and_varied(data: PenSet, rng: np.random.Generator) -> PenSet:
    """Validation drawings as drawn and ``VARIED_COPIES`` times varied (sizes,
    slants, devices, other styles of their digit, other stroke orders): our
    validation writers are friendlier than the world, and a combination fitted on
    them alone trusts whichever view knows them best."""
    out = PenSet()
    for strokes, label, group in zip(data.strokes, data.y, data.group, strict=True):
        out.add(strokes, label, group=group)
        styles = allographs.styles_of(label)
        for _ in range(VARIED_COPIES):
            drawn = list(strokes)
            try:
                if styles and rng.random() < 0.25:
                    drawn = styles[int(rng.integers(len(styles)))].make(drawn, rng)
                drawn = rewritten(stroke_space.vary(drawn, rng)[0], rng)
            except (ValueError, IndexError, FloatingPointError):
                continue
            out.add(drawn, label, group=group)
    return out


def fit_combination(image: Predictor, pen_model: Predictor, val: PenSet) -> dict:
    """The combination's weights and "not sure" threshold, fitted on validation
    drawings with both views (``classifier.combination``)."""
    p_image, p_pen = both_views(image, pen_model, val)
    labels = val.labels()
    # Each collection of writers counts the same: the pen digits' validation writers
    # are more like their training writers than the world is, and would have the
    # pen trusted more than it should be.
    fitted = combining.fit(p_image, p_pen, labels, val.group_weights())
    fitted["image_threshold"] = calibration.choose_threshold(p_image, labels)["threshold"]
    fitted["pen_temperature"] = pen_model.temperature
    fitted["pen_threshold"] = calibration.choose_threshold(p_pen, labels)["threshold"]
    fitted["fitted_on"] = f"validation drawings with strokes, as drawn and varied ({len(labels)})"
    fitted["features_version"] = pen.PEN_FEATURES_VERSION
    return fitted


# Epochs of the pen view: from new weights, and when fine-tuning the active
# version's pen model (a smoke run with ``limit`` trains one).
EPOCHS_NEW = 16
EPOCHS_FINETUNE = 3
BOTH = "+pen"  # a test set answered by both views: "ujipen+pen", judged by the gate


def limited(data: PenData, limit: int | None, rng: np.random.Generator) -> PenData:
    """At most ``limit`` drawings per part (smoke runs and tests)."""
    if limit is None:
        return data

    def take(part: PenSet) -> PenSet:
        if len(part) <= limit:
            return part
        keep = sorted(rng.choice(len(part), limit, replace=False))
        return PenSet([part.strokes[i] for i in keep], [part.y[i] for i in keep],
                      [part.weight[i] for i in keep])  # fmt: skip

    return PenData(take(data.train), take(data.val), {k: take(v) for k, v in data.tests.items()})


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
) -> tuple[dict, PenData]:
    """Train, export and calibrate the pen view, fit the combination with the run's
    image model, and report each view and both on every test set with strokes.
    Writes ``pen.keras`` and ``pen.tflite`` beside the image model; returns the
    metrics (``metrics["pen"]``) and the pen data (for the gate's answers).
    ``export`` writes the served artifact (the trainer's, so both views are
    exported alike)."""
    rng = np.random.default_rng(config.seed)
    data = limited(load_pen_data(config), config.limit, rng)
    if not len(data.train):
        return {}, data
    # As many epochs as the picture's, up to the pen view's own: a one-epoch smoke
    # run trains one, the bootstrap recipe EPOCHS_NEW, a fine-tune EPOCHS_FINETUNE.
    epochs = min(config.epochs, EPOCHS_FINETUNE if initial else EPOCHS_NEW)
    model, fitted = fit_pen(data, epochs, seed=config.seed, initial=initial, log=log)
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
    combination = fit_combination(image, pen_model, fitting)
    reports = report(image, pen_model, combination, data)
    not_digits = junk_report(image, pen_model, combination, data.val, config.seed)
    log(f"no digit ({not_digits['n']}, {not_digits['refused']} refused as too small): sure "
        f"{not_digits.get('image_sure', 0) * 100:.1f}% picture alone, "
        f"{not_digits.get('pen_sure', 0) * 100:.1f}% pen alone, "
        f"{not_digits.get('combined_sure', 0) * 100:.1f}% both")  # fmt: skip
    for name, scores in reports.items():
        picture, alone, both = (scores[v]["accuracy"] * 100 for v in ("image", "pen", "combined"))
        log(f"{name}: picture {picture:.2f}%, pen {alone:.2f}%, both {both:.2f}%")
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
        "not_digits": not_digits,
        "tflite_bytes": (out_dir / "pen.tflite").stat().st_size,
    }
    return metrics, data
