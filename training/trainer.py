"""The training core: data → model → fit → evaluate → export, in one function.

``train()`` is what the ``train`` management command runs, and what a Celery
worker runs for a retraining run. It writes everything a model version needs
into one directory: the Keras model, the LiteRT (TFLite) artifact the web
serves, ``metrics.json`` and the report plots.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from training import datasets

logger = logging.getLogger(__name__)

SOURCES = ("mnist", "pendigits", "drawings", "kaggle")
DEFAULT_SOURCES = ("mnist", "pendigits")
KAGGLE_VAL_FRACTION = 0.1
MNIST_VAL_SIZE = 5000


@dataclass
class TrainConfig:
    architecture: str = "digitnet"
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    sources: tuple[str, ...] = DEFAULT_SOURCES
    augment: bool = True
    seed: int = 1234
    patience: int = 8
    # For smoke runs and tests: cap each source's training set (None = all).
    limit: int | None = None
    kaggle_csv: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.sources) - set(SOURCES)
        if unknown or not self.sources:
            raise ValueError(
                f"Unknown sources {sorted(unknown)}; choose from {', '.join(SOURCES)}."
            )
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs, batch size and learning rate must be positive.")
        if "kaggle" in self.sources and not self.kaggle_csv:
            raise ValueError("The kaggle source needs the path of its CSV.")


@dataclass
class TrainingData:
    train: datasets.Split
    val: datasets.Split
    tests: dict[str, datasets.Split] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)


class TrainingCancelled(Exception):
    """Raised between batches when the caller asked to stop."""


@dataclass
class TrainResult:
    out_dir: Path
    metrics: dict
    keras_path: Path
    tflite_path: Path


def _take(split: datasets.Split, limit: int | None, rng: np.random.Generator) -> datasets.Split:
    if limit is None or len(split) <= limit:
        return split
    index = rng.choice(len(split), size=limit, replace=False)
    return datasets.Split(split.x[index], split.y[index])


def _concat(splits: list[datasets.Split]) -> datasets.Split:
    return datasets.Split(
        np.concatenate([s.x for s in splits]), np.concatenate([s.y for s in splits])
    )


def load_training_data(config: TrainConfig) -> TrainingData:
    """Each source contributes a train, a validation and a test part; tests are
    kept per source so a model is judged separately on each kind of writing."""
    rng = np.random.default_rng(config.seed)
    train, val, tests, manifest = [], [], {}, {}
    if "mnist" in config.sources:
        mnist = datasets.load_mnist()
        order = rng.permutation(len(mnist.train))
        val_index, train_index = order[:MNIST_VAL_SIZE], order[MNIST_VAL_SIZE:]
        train.append(
            _take(
                datasets.Split(mnist.train.x[train_index], mnist.train.y[train_index]),
                config.limit,
                rng,
            )
        )
        val.append(
            _take(
                datasets.Split(mnist.train.x[val_index], mnist.train.y[val_index]),
                config.limit,
                rng,
            )
        )
        tests["mnist-test"] = _take(mnist.test, config.limit, rng)
        manifest["mnist"] = dict(datasets.MNIST_FILES.values())
    if "pendigits" in config.sources:
        roles = datasets.pendigits_by_role(datasets.load_pendigits())
        train.append(_take(roles["train"].split(), config.limit, rng))
        val.append(_take(roles["val"].split(), config.limit, rng))
        tests["pendigits"] = _take(datasets.pendigits_test_split(), config.limit, rng)
        manifest["pendigits"] = {
            datasets.PENDIGITS_FILE: datasets.PENDIGITS_SHA256,
            "test_writers": sorted(datasets.PENDIGITS_TEST_WRITERS),
            "val_writers": sorted(datasets.PENDIGITS_VAL_WRITERS),
            "render_sizes": list(datasets.RENDER_SIZES),
        }
    if "drawings" in config.sources:
        # Pen digits imported as drawings are the pendigits source again, split by
        # drawing instead of by writer: with both, they would leak held-out writers.
        imported = ("import:pendigits",) if "pendigits" in config.sources else ()
        drawings = datasets.load_drawings(exclude_sources=imported)
        for part, split in drawings.items():
            if not len(split):
                continue
            if part == "test":
                tests["drawings-test"] = split  # never trained on: the gate compares on it
            else:
                (train if part == "train" else val).append(split)
        manifest["drawings"] = _drawings_manifest(imported)
    if "kaggle" in config.sources:
        kaggle = datasets.load_kaggle_csv(Path(config.kaggle_csv))
        order = rng.permutation(len(kaggle))
        cut = max(1, int(len(order) * KAGGLE_VAL_FRACTION))
        val.append(datasets.Split(kaggle.x[order[:cut]], kaggle.y[order[:cut]]))
        train.append(
            _take(datasets.Split(kaggle.x[order[cut:]], kaggle.y[order[cut:]]), config.limit, rng)
        )
        manifest["kaggle"] = {config.kaggle_csv: datasets.sha256_of(Path(config.kaggle_csv))}
    if not train:
        raise datasets.DatasetError("The chosen sources hold no training data.")
    train_split = _concat(train)
    if not val:  # e.g. drawings only, none in val yet: hold back a tenth of train
        order = rng.permutation(len(train_split))
        cut = max(1, len(order) // 10)
        val = [datasets.Split(train_split.x[order[:cut]], train_split.y[order[:cut]])]
        train_split = datasets.Split(train_split.x[order[cut:]], train_split.y[order[cut:]])
    return TrainingData(train_split, _concat(val), tests, manifest)


def _drawings_manifest(excluded_sources: tuple[str, ...]) -> dict:
    """Which drawings a run used, so it can be reproduced: ids and hashes per split."""
    from collector.models import Drawing

    rows = (
        Drawing.objects.filter(status=Drawing.Status.APPROVED)
        .exclude(source__in=excluded_sources)
        .order_by("id")
    )
    return {
        split: [[pk, sha] for pk, sha in rows.filter(split=split).values_list("id", "sha256")]
        for split in ("train", "val", "test")
    }


def _as_float(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / 255.0)[..., None]


def configure_device() -> str:
    """Use the GPU when there is one (memory growth, mixed precision); name the device."""
    import keras
    import tensorflow as tf

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


def export_tflite(model, path: Path) -> bytes:
    """Export the inference artifact the web serves (float32; see the serving issue
    for why no quantisation unless it is measured to cost nothing)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    # The converter prints the whole traced signature to stdout; keep it for debugging only.
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        flatbuffer = converter.convert()
    logger.debug("TFLite conversion output:\n%s", captured.getvalue())
    path.write_bytes(flatbuffer)
    return flatbuffer


def train(
    config: TrainConfig,
    out_dir: Path,
    *,
    verbose: int = 1,
    on_epoch: Callable[[int, dict], None] | None = None,
    on_batch: Callable[[int, int, int, dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    data: TrainingData | None = None,
    watch_tests: bool = False,
) -> TrainResult:
    """Train, export, verify and report.

    ``on_batch(epoch, step, steps_per_epoch, logs)`` sees every batch (callers
    throttle their own writes); ``should_stop()`` is asked between batches and
    a true answer ends training with :class:`TrainingCancelled`. ``watch_tests``
    scores the test sets after every epoch, for learning-speed benchmarks only
    (never used to pick a model)."""
    import keras
    import tensorflow as tf

    from classifier.runtime import Predictor
    from training import architectures, evaluation
    from training.augmentation import DigitAugment

    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    device = configure_device()
    started = time.monotonic()

    # 1. Data.
    data = data or load_training_data(config)
    x_train, y_train = _as_float(data.train.x), keras.utils.to_categorical(data.train.y, 10)
    x_val, y_val = _as_float(data.val.x), keras.utils.to_categorical(data.val.y, 10)
    train_ds = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(512)

    # 2. Model. Augmentation is a layer in front of it (on the same device), not in it.
    model = architectures.build(config.architecture)
    inputs = keras.Input(architectures.INPUT_SHAPE)
    augmented = DigitAugment()(inputs) if config.augment else inputs
    fitted = keras.Model(inputs, model(augmented))
    steps_per_epoch = int(np.ceil(len(x_train) / config.batch_size))
    steps = config.epochs * steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10,
        decay_steps=max(1, steps - steps // 20),
        warmup_target=config.learning_rate,
        warmup_steps=steps // 20,
        alpha=0.01,
    )
    fitted.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, clipnorm=1.0),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )

    # 3. Fit: early stopping on validation accuracy, keeping the best weights.
    epoch_seconds: list[float] = []

    class Progress(keras.callbacks.Callback):
        current_epoch = 1

        def on_epoch_begin(self, epoch, logs=None):
            self.current_epoch = epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            if on_batch is not None:
                on_batch(self.current_epoch, batch + 1, steps_per_epoch, dict(logs or {}))
            if should_stop is not None and should_stop():
                raise TrainingCancelled("Cancelled on request.")

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.monotonic() - started)
            if watch_tests and logs is not None:
                for name, split in data.tests.items():
                    predicted = model.predict(_as_float(split.x), batch_size=1024, verbose=0)
                    logs[f"test_{name}_accuracy"] = float((predicted.argmax(1) == split.y).mean())
            if on_epoch is not None:
                on_epoch(epoch + 1, dict(logs or {}))

    history = fitted.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        shuffle=False,  # the dataset reshuffles every epoch itself
        verbose=verbose,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", patience=config.patience, restore_best_weights=True
            ),
            Progress(),
        ],
    ).history
    train_seconds = time.monotonic() - started

    # 4. Export and re-verify: the served artifact must answer like the Keras model.
    keras_path = out_dir / "model.keras"
    tflite_path = out_dir / "model.tflite"
    model.save(keras_path)
    export_tflite(model, tflite_path)
    predictor = Predictor(tflite_path)

    # 5. Evaluate on every held-out test set, with the artifact that will be served.
    reports = {}
    agreement = {}
    for name, split in data.tests.items():
        x_test = _as_float(split.x)
        served = predictor.predict(x_test[..., 0])
        reference = model.predict(x_test, batch_size=512, verbose=0)
        agreement[name] = {
            "argmax_identical": bool((served.argmax(1) == reference.argmax(1)).all()),
            "max_abs_diff": float(np.abs(served - reference).max()),
        }
        reports[name] = evaluation.classification_report(split.y, served)
        evaluation.plot_confusion(reports[name], name, out_dir / f"confusion-{name}.png")
        evaluation.plot_misclassified(
            x_test, split.y, served, name, out_dir / f"misclassified-{name}.png"
        )
    evaluation.plot_learning_curves(history, out_dir / "learning-curves.png")

    metrics = {
        "architecture": config.architecture,
        "config": {**asdict(config), "sources": list(config.sources)},
        "parameters": int(model.count_params()),
        "device": device,
        "epochs_run": len(history.get("loss", [])),
        "train_seconds": round(train_seconds, 1),
        "epoch_seconds": [round(s, 1) for s in epoch_seconds],
        "history": {k: [round(float(v), 5) for v in vs] for k, vs in history.items()},
        "best_val_accuracy": float(max(history.get("val_accuracy", [0.0]))),
        "n_train": len(data.train),
        "n_val": len(data.val),
        "tests": reports,
        "tflite_agreement": agreement,
        "manifest": data.manifest,
        "tflite_bytes": tflite_path.stat().st_size,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return TrainResult(out_dir, metrics, keras_path, tflite_path)
