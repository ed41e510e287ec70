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

from classifier import calibration
from classifier.predictor import Predictor
from training import architectures, evaluation, gate, pen_view, recipes
from training.augmentation import DigitAugment
from training.config import TrainConfig
from training.progress import Callback, KerasBridge, Phases, RemainingTime
from training.recipes import Recipe
from training.sources import TrainingData, load_training_data
from training.stream import mixture_weights, training_dataset

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
    out_dir: Path
    metrics: dict
    keras_path: Path
    tflite_path: Path
    # The served artifact's digit for each image of each test set (the gate's input).
    predictions: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    # The test sets with strokes the pen view was scored on (``training.pen_view``).
    pen_sets: dict = dataclasses.field(default_factory=dict)


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
    common = {"clipnorm": recipe.clipnorm} if recipe.clipnorm else {}
    if recipe.ema_horizon:  # the average's time constant: that share of the steps
        common |= {"use_ema": True, "ema_momentum": 1 - 1 / max(1.0, recipe.ema_horizon * steps)}
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=recipe.weight_decay, **common)
    if recipe.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(rate, rho=0.9, epsilon=1e-8, **common)
    return keras.optimizers.Adam(rate, **common)


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
    accuracy, and keeping the best epoch's weights (a best-only checkpoint). With a
    moving average of the weights, it is what each epoch is validated, kept and
    ended with (swapped in first, so the callbacks after see it)."""
    found: list[keras.callbacks.Callback] = []
    if recipe.ema_horizon:
        found.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
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
    bridge = KerasBridge(callback, steps_per_epoch, time.monotonic(), remaining)
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


AGREEMENT_CHECKED = 1000  # images per test set the export is checked on against Keras


def export_and_verify(
    model: keras.Model, data: TrainingData, out_dir: Path
) -> tuple[Path, Path, dict, dict, dict, dict]:
    """Save the Keras model and the served artifact, calibrate it, then score every
    held-out test set with the artifact as it will be served (its answers with the
    fitted temperature), checking that it answers like the Keras model. Each set
    goes through the artifact once. Returns the two paths, the reports, the
    agreement checks, the calibration and the served digits per set."""
    keras_path = out_dir / "model.keras"
    tflite_path = out_dir / "model.tflite"
    model.save(keras_path)
    export_tflite(model, tflite_path)
    predictor = Predictor(tflite_path)  # uncalibrated: the temperature is fitted next
    raw = evaluation.answers(predictor, data.tests)
    fitted = calibrate(
        evaluation.answers(predictor, {"val": data.val})["val"],
        data.val.y,
        {name: (raw[name], images.y) for name, images in data.tests.items()},
    )
    temperature = fitted["temperature"]
    reports, agreement, predictions = {}, {}, {}
    for name, images in data.tests.items():
        x_test = images.as_inputs()
        # What Predictor(tflite_path, temperature=temperature) answers, as served.
        served = calibration.apply_temperature(raw[name], temperature)
        # The export is checked against Keras on a spread of each set's images: a
        # converter fault shows on any of them, and Keras answering all of MNIST
        # again would cost seconds of every run.
        checked = np.unique(np.linspace(0, len(x_test) - 1, AGREEMENT_CHECKED).astype(int))
        reference = calibration.apply_temperature(
            model.predict(x_test[checked, ..., None], batch_size=512, verbose=0), temperature
        )
        agreement[name] = {
            "argmax_identical": bool((served[checked].argmax(1) == reference.argmax(1)).all()),
            "max_abs_diff": float(np.abs(served[checked] - reference).max()),
            "checked": len(checked),
        }
        reports[name] = evaluation.classification_report(images.y, served)
        predictions[name] = served.argmax(axis=1)
        if ":" in name:  # one style of the style test set: plotted together below
            continue
        evaluation.plot_confusion(reports[name], name, out_dir / f"confusion-{name}.png")
        evaluation.plot_misclassified(
            x_test, images.y, served, name, out_dir / f"misclassified-{name}.png"
        )
    evaluation.plot_styles(reports, out_dir / "styles.png")
    return keras_path, tflite_path, reports, agreement, fitted, predictions


def train(
    config: TrainConfig,
    out_dir: Path,
    *,
    verbose: int = 1,
    data: TrainingData | None = None,
    callback: Callback | None = None,
    initial: Path | None = None,
    initial_pen: Path | None = None,
) -> TrainResult:
    """Train, export, verify and report (``data`` defaults to the config's sources;
    ``initial``: a saved Keras model to fine-tune instead of new weights;
    ``initial_pen``: the same for the pen view), the pen view included."""
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    device = configure_device()
    callback = callback or Callback()
    started = time.monotonic()
    phases = Phases()

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
    keras_path, tflite_path, reports, agreement, fitted, predictions = export_and_verify(
        model, data, out_dir
    )
    phases.done("export and tests")
    # 5. The pen view, its combination with this image model, and both on every
    # test set with strokes.
    callback.on_log("training the pen view")
    pen_metrics, pen_data = pen_view.train_view(
        config, out_dir, tflite_path, fitted["temperature"], initial_pen, callback.on_log,
        export=export_tflite, sources=set(data.manifest),
    )  # fmt: skip
    # Its answers on the test sets with strokes, as it will serve them (the picture
    # alone when no pen view could be trained): what the gate compares there.
    image = Predictor(tflite_path, temperature=fitted["temperature"])
    pen_model = combination = None
    if pen_metrics:
        combination = pen_metrics["combination"]
        pen_model = Predictor(out_dir / "pen.tflite", temperature=combination["pen_temperature"])
    for name, drawings in pen_data.tests.items():
        predictions[name + gate.BOTH] = pen_view.answers(image, pen_model, combination, drawings)
    phases.done("pen view")
    # 6. Report.
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
        "pen": pen_metrics,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return TrainResult(out_dir, metrics, keras_path, tflite_path, predictions, pen_data.tests)
