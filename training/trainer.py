"""The training core: data → model → fit → export and verify → report.

``train()`` is what the ``train`` management command runs, and what a Celery
worker runs for a retraining run. It writes everything a model version needs
into one directory: the Keras model, the LiteRT (TFLite) artifact the web
serves, ``metrics.json`` and the report plots. Callers follow it through a
:class:`Callback` (progress, cancellation).

This module imports Keras and TensorFlow: only workers and commands import it,
never a web process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import platform
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from classifier import calibration, serving
from classifier.predictor import Predictor
from training import architectures, evaluation, recipes
from training.augmentation import DigitAugment
from training.config import TrainConfig
from training.recipes import Recipe
from training.sources import TrainingData, load_training_data

logger = logging.getLogger(__name__)


class TrainingCancelled(Exception):
    """Raised between batches when the caller's callback asked to stop."""


class Callback:
    """What a caller hears while a model trains; override what you need.

    ``model`` is the Keras model being trained (set before the first batch), for
    callers that look at it between epochs, such as the learning-speed benchmark.
    ``eta_seconds`` is the estimated time left to the end of the run, testing and
    export included (:class:`RemainingTime`), kept current before each call.
    """

    model: keras.Model | None = None
    eta_seconds: float | None = None

    def on_batch(self, epoch: int, step: int, steps_per_epoch: int, logs: dict) -> None:
        """After every batch; callers throttle their own writes."""

    def on_epoch(self, epoch: int, logs: dict) -> None:
        """After every epoch; ``logs`` may be extended (it becomes the history)."""

    def on_testing(self) -> None:
        """Training is over; the model is being exported and tested (``eta_seconds``)."""

    def should_stop(self) -> bool:
        """Asked between batches: True ends training with :class:`TrainingCancelled`."""
        return False


class RemainingTime:
    """How long the run has left, from what it has measured so far.

    A training step's time is measured from the end of the first step on (the
    first one traces and compiles the step: seconds that never recur), so the
    estimate is right from the first epoch's first few batches. Validation is
    timed at each epoch's end and counted for the epochs left; until the first one
    it is estimated from the step time (a forward pass is about a third of a
    training step). Testing and export after the last epoch are estimated the same
    way, from the images they score, plus the conversion to the served artifact.
    Early stopping can only make the run shorter than the estimate.
    """

    EXPORT_SECONDS = 6.0  # TFLite conversion, saving and the report's plots, measured

    def __init__(
        self, epochs: int, steps_per_epoch: int, batch_size: int, val_images: int, test_images: int
    ):
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.val_images = val_images
        self.test_images = test_images
        self.first_step_end: float | None = None
        self.steps_timed = 0
        self.step_seconds: float | None = None
        self.validation_seconds: list[float] = []

    def step_done(self, now: float) -> None:
        if self.first_step_end is None:
            self.first_step_end = now
            return
        self.steps_timed += 1
        self.step_seconds = (now - self.first_step_end) / self.steps_timed

    def pause(self, seconds: float) -> None:
        """Time between steps that is not training (validation, callbacks): not a step's."""
        if self.first_step_end is not None:
            self.first_step_end += seconds

    def validated(self, seconds: float) -> None:
        self.validation_seconds.append(seconds)
        self.pause(seconds)

    def _scoring_seconds(self, images: int) -> float:
        if self.validation_seconds and self.val_images:
            return (
                sum(self.validation_seconds)
                / len(self.validation_seconds)
                / self.val_images
                * images
            )
        return (self.step_seconds or 0.0) / self.batch_size / 3 * images

    def finishing_seconds(self) -> float:
        """Testing and export: the served artifact and the Keras model each score every
        test set, the artifact also the validation set, and the gate scores the active
        model on the test sets again."""
        return self.EXPORT_SECONDS + self._scoring_seconds(3 * self.test_images + self.val_images)

    def estimate(self, epoch: int, step: int) -> float | None:
        """Seconds left after ``step`` of ``epoch`` (1-based); None before it can tell."""
        if self.step_seconds is None:
            return None
        steps_left = (self.epochs - epoch) * self.steps_per_epoch + self.steps_per_epoch - step
        validations_left = self.epochs - epoch + (1 if step < self.steps_per_epoch else 0)
        if step == self.steps_per_epoch and len(self.validation_seconds) < epoch:
            validations_left += 1  # this epoch's validation is still to come
        return (
            steps_left * self.step_seconds
            + validations_left * self._scoring_seconds(self.val_images)
            + self.finishing_seconds()
        )


class _KerasBridge(keras.callbacks.Callback):
    """Keras' callback protocol, translated to :class:`Callback` (1-based epochs)."""

    def __init__(
        self, callback: Callback, steps_per_epoch: int, started: float, remaining: RemainingTime
    ):
        super().__init__()
        self.callback = callback
        self.steps_per_epoch = steps_per_epoch
        self.started = started
        self.remaining = remaining
        self.current_epoch = 1
        self.epoch_seconds: list[float] = []
        self.validation_started: float | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.current_epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        self.remaining.step_done(time.monotonic())
        self.callback.eta_seconds = self.remaining.estimate(self.current_epoch, batch + 1)
        self.callback.on_batch(
            self.current_epoch, batch + 1, self.steps_per_epoch, dict(logs or {})
        )
        if self.callback.should_stop():
            raise TrainingCancelled("Cancelled on request.")

    def on_test_begin(self, logs=None):
        self.validation_started = time.monotonic()

    def on_test_end(self, logs=None):
        if self.validation_started is not None:
            self.remaining.validated(time.monotonic() - self.validation_started)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.monotonic() - self.started)
        paused = time.monotonic()
        self.callback.eta_seconds = self.remaining.estimate(epoch + 1, self.steps_per_epoch)
        self.callback.on_epoch(epoch + 1, logs if logs is not None else {})
        # The caller's own work between epochs (a benchmark scoring test sets) is not a step's.
        self.remaining.pause(time.monotonic() - paused)


class _Phases:
    """Wall-clock seconds of each step of a run, for ``metrics.json``: where the time goes."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.last = time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(now - self.last, 2)
        self.last = now


@dataclasses.dataclass
class TrainResult:
    out_dir: Path
    metrics: dict
    keras_path: Path
    tflite_path: Path


def configure_device() -> str:
    """Use the GPU when there is one (memory growth, mixed precision); name the device."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        with contextlib.suppress(RuntimeError):  # already initialised in this process
            tf.config.experimental.set_memory_growth(gpu, True)
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    keras.mixed_precision.set_global_policy("float32")
    return f"CPU: {platform.processor() or platform.machine()}"


def export_tflite(model: keras.Model, path: Path) -> bytes:
    """Export the inference artifact the web serves (float32; see the serving issue
    for why no quantisation unless it is measured to cost nothing)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    # The converter prints the whole traced signature to stdout; keep it for debugging only.
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        flatbuffer = converter.convert()
    logger.debug("TFLite conversion output:\n%s", captured.getvalue())
    path.write_bytes(flatbuffer)
    return flatbuffer


def optimizer(
    recipe: Recipe, learning_rate: float, steps_per_epoch: int, epochs: int
) -> keras.optimizers.Optimizer:
    """The recipe's optimizer at ``learning_rate`` (the run's, which may differ from
    the recipe's), with its schedule over ``epochs`` epochs and its clipping."""
    steps = epochs * steps_per_epoch
    if recipe.schedule == "warmup-cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=learning_rate / 10,
            decay_steps=max(1, steps - steps // 20),
            warmup_target=learning_rate,
            warmup_steps=steps // 20,
            alpha=0.01,
        )
    elif recipe.schedule == "one-cycle":  # super-convergence: 30 % up from rate/25, then down
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=learning_rate / 25,
            decay_steps=max(1, steps - int(steps * 0.3)),
            warmup_target=learning_rate,
            warmup_steps=int(steps * 0.3),
            alpha=1e-3,
        )
    elif recipe.schedule == "step":  # PyTorch's StepLR, stepped once an epoch
        rate = keras.optimizers.schedules.ExponentialDecay(
            learning_rate,
            decay_steps=recipe.step_epochs * steps_per_epoch,
            decay_rate=recipe.step_factor,
            staircase=True,
        )
    else:  # constant, or lowered by the recipe's ReduceLROnPlateau
        rate = learning_rate
    clip = {"clipnorm": recipe.clipnorm} if recipe.clipnorm else {}
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=recipe.weight_decay, **clip)
    if recipe.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(rate, rho=0.9, epsilon=1e-8, **clip)
    return keras.optimizers.Adam(rate, **clip)


def build_model(
    config: TrainConfig, steps_per_epoch: int, initial: Path | None = None
) -> tuple[keras.Model, keras.Model]:
    """``(model, fitted)``: the architecture that is exported, and the same model
    behind the recipe's augmentation layer (on the same device), compiled with the
    recipe's optimizer, schedule and loss. ``initial``: a saved Keras model to start
    from (fine-tuning) instead of new weights."""
    recipe = recipes.recipe(config.recipe)
    if initial is not None:
        model = keras.models.load_model(initial, compile=False)
    else:
        model = architectures.build(config.architecture)
    inputs = keras.Input(architectures.INPUT_SHAPE)
    augmented = inputs
    if config.augment and recipe.augmentation is not None:
        augmented = DigitAugment(recipe.augmentation)(inputs)
    fitted = keras.Model(inputs, model(augmented))
    fitted.compile(
        optimizer=optimizer(recipe, config.learning_rate, steps_per_epoch, config.epochs),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )
    return model, fitted


def recipe_callbacks(recipe: Recipe, epochs: int) -> list[keras.callbacks.Callback]:
    """The recipe's callbacks: ReduceLROnPlateau, early stopping on validation
    accuracy, and keeping the best epoch's weights (a best-only checkpoint)."""
    found: list[keras.callbacks.Callback] = []
    if recipe.plateau is not None:
        found.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=recipe.plateau.monitor,
                factor=recipe.plateau.factor,
                patience=recipe.plateau.patience,
                min_lr=recipe.plateau.min_lr,
            )
        )
    if recipe.early_stopping is not None or recipe.keep_best:
        found.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy",
                # Without early stopping, patience past the last epoch: it only keeps the best.
                patience=recipe.early_stopping if recipe.early_stopping is not None else epochs,
                restore_best_weights=recipe.keep_best,
            )
        )
    return found


def mixture_weights(data: TrainingData) -> list[float]:
    """Each part's share of a batch: the fixed images and every pool at their
    natural size, except pools with a fixed share (approved drawings), which
    take it and leave the rest to the others in proportion."""
    natural = [float(len(data.train))] + [
        0.0 if pool.share is not None else float(pool.draws) for pool in data.pools
    ]
    fixed = [0.0] + [pool.share or 0.0 for pool in data.pools]
    rest = max(0.0, 1.0 - sum(fixed))
    total = sum(natural) or 1.0
    weights = [f + rest * n / total for n, f in zip(natural, fixed, strict=True)]
    scale = sum(weights) or 1.0
    return [w / scale for w in weights]


def training_dataset(data: TrainingData, config: TrainConfig) -> tf.data.Dataset:
    """The endless training stream of one-hot-labelled float batches (fit reads
    ``len(data)`` images an epoch), built a whole batch at a time, with no
    per-image step:

    - the fixed images take their share (:func:`mixture_weights`) of every batch,
      in a new random order each pass, every image once a pass
      (``tf.random.experimental.index_shuffle``: no shuffle buffer);
    - the rest of the batch is drawn from the pools: a drawing by its pool's share
      and its own weight (corrections count more), then one of its variants (one
      inverse-CDF lookup over every pool's variants together).

    Batches depend only on the seed and their number, never on timing. The stream
    costs about 1 % of a training step on the CPU (it was 11 % when it drew and
    mixed image by image). Augmentation is not here: it is the fitted model's
    first layer, so on a GPU it runs on the device (on the CPU, measured, running it
    here in parallel was no faster).
    """
    weights = mixture_weights(data)
    batch = config.batch_size
    seed = tf.constant(config.seed, tf.int64)
    fixed_x, fixed_y = tf.constant(data.train.x), tf.constant(data.train.y)
    n_fixed = len(data.train)
    period = max(n_fixed, 1)  # stream positions in one pass over the fixed images
    fixed_share = weights[0] if n_fixed else 0.0
    # Every pool's variants as rows of one table, with each row's chance of a draw.
    rows_x, rows_y, chances = [], [], []
    for pool, share in zip(data.pools, weights[1:], strict=True):
        if share <= 0 or not len(pool):
            continue
        variants = pool.x.shape[1]
        rows_x.append(pool.x.reshape(-1, *pool.x.shape[2:]))
        rows_y.append(np.repeat(pool.y, variants))
        chances.append(np.repeat(share * pool.weight / pool.weight.sum() / variants, variants))
    if not rows_x:
        fixed_share = 1.0
    pool_x = tf.constant(np.concatenate(rows_x) if rows_x else np.zeros((1, 28, 28), np.uint8))
    pool_y = tf.constant(np.concatenate(rows_y) if rows_y else np.zeros(1, np.uint8))
    cdf = np.cumsum(np.concatenate(chances)) if chances else np.ones(1)
    cdf = tf.constant(cdf / cdf[-1], tf.float64)

    def make_batch(number):
        # The fixed images' stream positions this batch covers: its share, rounded
        # so that every pass takes each image once.
        first = tf.cast(tf.round(tf.cast(number, tf.float64) * batch * fixed_share), tf.int64)
        last = tf.cast(tf.round(tf.cast(number + 1, tf.float64) * batch * fixed_share), tf.int64)
        position = tf.range(first, last)
        passes = position // period  # a batch spans at most two passes

        def shuffled(pass_number):
            return tf.random.experimental.index_shuffle(
                position % period, tf.stack([seed, pass_number]), period - 1
            )

        first_pass = first // period
        index = tf.where(passes == first_pass, shuffled(first_pass), shuffled(first_pass + 1))
        draws = batch - tf.cast(last - first, tf.int32)
        u = tf.random.stateless_uniform([draws], tf.stack([seed + 1, number]), dtype=tf.float64)
        rows = tf.minimum(tf.searchsorted(cdf, u, side="right"), tf.shape(cdf, tf.int32)[0] - 1)
        x = tf.concat([tf.gather(fixed_x, index), tf.gather(pool_x, rows)], 0)
        y = tf.concat([tf.gather(fixed_y, index), tf.gather(pool_y, rows)], 0)
        x = tf.cast(x, tf.float32)[..., None] / 255.0
        return x, tf.one_hot(tf.cast(y, tf.int32), 10)

    return (
        tf.data.Dataset.range(2**62)
        .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def fit(
    model: keras.Model,
    fitted: keras.Model,
    data: TrainingData,
    config: TrainConfig,
    callback: Callback,
    steps_per_epoch: int,
    verbose: int,
) -> tuple[dict, list[float], float]:
    """Fit with the recipe's callbacks; returns the history, the wall-clock
    seconds at the end of each epoch, and the seconds spent validating."""
    x_val = data.val.as_inputs()[..., None]
    y_val = keras.utils.to_categorical(data.val.y, 10)
    train_ds = training_dataset(data, config)
    val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(512)
    callback.model = model
    remaining = RemainingTime(
        config.epochs,
        steps_per_epoch,
        config.batch_size,
        len(data.val),
        sum(len(images) for images in data.tests.values()),
    )
    bridge = _KerasBridge(callback, steps_per_epoch, time.monotonic(), remaining)
    history = fitted.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        shuffle=False,  # the dataset shuffles and samples itself
        verbose=verbose,
        callbacks=[*recipe_callbacks(recipes.recipe(config.recipe), config.epochs), bridge],
    ).history
    callback.eta_seconds = remaining.finishing_seconds()
    return history, bridge.epoch_seconds, sum(remaining.validation_seconds)


def calibrate(val: np.ndarray, val_labels: np.ndarray, tests: dict[str, tuple]) -> dict:
    """Fit the served temperature and the "not sure" threshold on the validation
    set's raw probabilities (``classifier.calibration``), and measure the calibration
    error before and after on every test set (``name → (raw probabilities, labels)``)."""
    temperature = calibration.fit_temperature(val, val_labels)
    result = {
        "temperature": temperature,
        **calibration.choose_threshold(calibration.apply_temperature(val, temperature), val_labels),
        "fitted_on": f"validation set ({len(val_labels)} images)",
        "ece": {},
    }
    for name, (raw, labels) in tests.items():
        result["ece"][name] = {
            when: round(calibration.expected_calibration_error(probabilities, labels), 5)
            for when, probabilities in (
                ("before", raw),
                ("after", calibration.apply_temperature(raw, temperature)),
            )
        }
    return result


def export_and_verify(
    model: keras.Model, data: TrainingData, out_dir: Path
) -> tuple[Path, Path, dict, dict, dict]:
    """Save the Keras model and the served artifact, calibrate it, then score every
    held-out test set with the artifact as it will be served (its answers with the
    fitted temperature), checking that it answers like the Keras model. Each set
    goes through the artifact once. Returns the two paths, the reports, the
    agreement checks and the calibration."""
    keras_path = out_dir / "model.keras"
    tflite_path = out_dir / "model.tflite"
    model.save(keras_path)
    export_tflite(model, tflite_path)
    predictor = Predictor(tflite_path)  # uncalibrated: the temperature is fitted next
    raw = {
        name: serving.classify(images.as_inputs(), predictor).probabilities
        for name, images in data.tests.items()
    }
    fitted = calibrate(
        serving.classify(data.val.as_inputs(), predictor).probabilities,
        data.val.y,
        {name: (raw[name], images.y) for name, images in data.tests.items()},
    )
    temperature = fitted["temperature"]
    reports, agreement = {}, {}
    for name, images in data.tests.items():
        x_test = images.as_inputs()
        # What Predictor(tflite_path, temperature=temperature) answers, as served.
        served = calibration.apply_temperature(raw[name], temperature)
        reference = calibration.apply_temperature(
            model.predict(x_test[..., None], batch_size=512, verbose=0), temperature
        )
        agreement[name] = {
            "argmax_identical": bool((served.argmax(1) == reference.argmax(1)).all()),
            "max_abs_diff": float(np.abs(served - reference).max()),
        }
        reports[name] = evaluation.classification_report(images.y, served)
        if ":" in name:  # one style of the style test set: plotted together below
            continue
        evaluation.plot_confusion(reports[name], name, out_dir / f"confusion-{name}.png")
        evaluation.plot_misclassified(
            x_test, images.y, served, name, out_dir / f"misclassified-{name}.png"
        )
    evaluation.plot_styles(reports, out_dir / "styles.png")
    return keras_path, tflite_path, reports, agreement, fitted


def train(
    config: TrainConfig,
    out_dir: Path,
    *,
    verbose: int = 1,
    data: TrainingData | None = None,
    callback: Callback | None = None,
    initial: Path | None = None,
) -> TrainResult:
    """Train, export, verify and report (``data`` defaults to the config's sources;
    ``initial``: a saved Keras model to fine-tune instead of new weights)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    device = configure_device()
    callback = callback or Callback()
    started = time.monotonic()
    phases = _Phases()

    # 1. Data.
    data = data or load_training_data(config)
    phases.done("loading")
    # 2. Model.
    steps_per_epoch = int(np.ceil(len(data) / config.batch_size))
    model, fitted = build_model(config, steps_per_epoch, initial)
    phases.done("building")
    # 3. Fit.
    history, epoch_seconds, validating = fit(
        model, fitted, data, config, callback, steps_per_epoch, verbose
    )
    train_seconds = time.monotonic() - started
    phases.done("fitting")
    phases.seconds["of which validating"] = round(validating, 2)
    callback.on_testing()
    # 4. Export and verify: the served artifact must answer like the Keras model.
    keras_path, tflite_path, reports, agreement, fitted = export_and_verify(model, data, out_dir)
    phases.done("export and tests")
    # 5. Report.
    evaluation.plot_learning_curves(history, out_dir / "learning-curves.png")
    phases.done("report")
    metrics = {
        "architecture": config.architecture,
        "config": config.as_dict(),
        "recipe": dataclasses.asdict(recipes.recipe(config.recipe)),
        "parameters": int(model.count_params()),
        "device": device,
        "epochs_run": len(history.get("loss", [])),
        "train_seconds": round(train_seconds, 1),
        "epoch_seconds": [round(s, 1) for s in epoch_seconds],
        # Where the run's time went (loading is 0 when the caller loaded the data).
        "phase_seconds": phases.seconds,
        "history": {k: [round(float(v), 5) for v in vs] for k, vs in history.items()},
        "best_val_accuracy": float(max(history.get("val_accuracy", [0.0]))),
        "n_train": len(data),
        "mixture": {
            name: round(weight, 4)
            for name, weight in zip(
                ["images", *(pool.name for pool in data.pools)], mixture_weights(data), strict=True
            )
        },
        "started_from": "active model" if initial is not None else "new weights",
        "calibration": fitted,
        "n_val": len(data.val),
        "tests": reports,
        "tflite_agreement": agreement,
        "manifest": data.manifest,
        "tflite_bytes": tflite_path.stat().st_size,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return TrainResult(out_dir, metrics, keras_path, tflite_path)
