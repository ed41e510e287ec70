"""Where a run's data comes from, and how one run's data is put together.

Sources: MNIST's IDX files, the UNIPEN pen digits, approved contributed
drawings and a Kaggle CSV. Everything becomes 28×28 uint8 arrays (ink bright
on dark) plus labels, so sources can be concatenated. Pen strokes are drawn by
``classifier.canvas`` and go through ``classifier.preprocessing`` exactly like
a live drawing: no train/serve skew. ``load_training_data`` assembles a run's
train, validation and per-source test sets from its ``TrainConfig``.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

from classifier import canvas, preprocessing
from classifier.canvas import DEFAULT_RENDER_SIZE
from collector import dataset
from collector.formats import DatasetError, emnist, idx, image_folder, kaggle_csv, unipen, usps
from collector.models import Drawing
from training import allographs, recipes
from training import strokes as pen
from training.config import DRAWINGS_FOR_SHARE, TrainConfig, dataset_file, dataset_folder

logger = logging.getLogger(__name__)

# Sources without a validation split of their own (Kaggle's CSV, a folder of images,
# EMNIST's and USPS's training parts) hold this share of it back.
VAL_FRACTION = 0.1

MNIST_FILES = {
    "train_images": (
        "train-images-idx3-ubyte.gz",
        "d2cebd02927d553943b2679536bf602ec0cdcb6555ad87dda5d640e1d425faaf",
    ),
    "train_labels": (
        "train-labels-idx1-ubyte.gz",
        "2a107763ddf1eef92815bfbb1b855b662a7228add9dfab29de697c644d666cda",
    ),
    "test_images": (
        "t10k-images-idx3-ubyte.gz",
        "4e612d6003de73386763f2c35c044ab376e830da80adb2347651a1f182f103a1",
    ),
    "test_labels": (
        "t10k-labels-idx1-ubyte.gz",
        "909a5aeb9fcec3f171b427c45622a55f69dc15dd80bd0624413cbfbe12553c1c",
    ),
}
PENDIGITS_FILE = "pendigits-orig.tra.gz"
PENDIGITS_SHA256 = "ef094c671b93afb431dfc9f9ff3c49f80b3257497fead8eea26877e88d25a31f"

# Writers never trained on by our models: the honest "people the model never
# saw" measurement, and the digits the browser test replays. Split by writer,
# never by drawing, or a writer's style leaks from train into test.
PENDIGITS_TEST_WRITERS = frozenset({3, 8, 13, 18, 23, 28})
PENDIGITS_VAL_WRITERS = frozenset({5, 15, 25})

# How big people draw on the 256 px canvas: the digit's longer side in px.
# Validation renders each digit at several sizes, because the stroke is a fixed
# 16 px whatever the size, so size changes the relative stroke weight.
RENDER_SIZES = (96, 150, 200)
# Each pen digit is drawn this many times per epoch (one variant each time).
PEN_DRAWS_PER_EPOCH = 3
# Bump when ``training.strokes`` or ``training.allographs`` change what they make:
# cached variant pools and style test sets belong to one version.
SYNTHESIS_VERSION = 1


class ChecksumMismatch(DatasetError):
    pass


@dataclass
class Images:
    """Labelled 28×28 model inputs, stored as bytes (ink bright on dark)."""

    x: np.ndarray  # (n, 28, 28) uint8
    y: np.ndarray  # (n,) uint8

    def __len__(self) -> int:
        return len(self.y)

    def as_inputs(self) -> np.ndarray:
        """(n, 28, 28) float32 in [0, 1]: what the model and the predictor take."""
        return self.x.astype(np.float32) / 255.0


@dataclass
class Pool:
    """Several model inputs (variants) of each of n drawings: each draw during
    training picks one drawing (by ``weight``) and one of its variants at random,
    so an epoch sees a different way of writing every drawing."""

    name: str
    x: np.ndarray  # (n, k, 28, 28) uint8
    y: np.ndarray  # (n,)
    weight: np.ndarray  # (n,) relative chance of being drawn
    draws: int  # draws per epoch at the pool's natural share
    share: float | None = None  # a fixed share of every batch instead

    def __len__(self) -> int:
        return len(self.y)

    def select(self, index: np.ndarray) -> Pool:
        """The pool's drawings at ``index``, with all their variants."""
        return Pool(self.name, self.x[index], self.y[index], self.weight[index],
                    draws=len(index), share=self.share)  # fmt: skip


@dataclass
class Mnist:
    train: Images
    test: Images


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verified(path: Path, expected: str) -> Path:
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumMismatch(
            f"{path} has sha256 {actual}, expected {expected}: refusing a corrupt or "
            "different file."
        )
    return path


def mnist_dir() -> Path | None:
    configured = getattr(settings, "DIGITS_MNIST_DIR", None)
    return Path(configured) if configured else None


def load_mnist(directory: Path | None = None) -> Mnist:
    """MNIST from its four gzipped IDX files, checksums verified.

    Without a configured directory holding the files, fall back to Keras'
    downloader (for users with internet); tests and CI always use the files.
    """
    directory = directory or mnist_dir()
    if directory is not None and all((directory / n).exists() for n, _ in MNIST_FILES.values()):
        arrays = {
            key: idx.parse(gzip.decompress(_verified(directory / name, digest).read_bytes()))
            for key, (name, digest) in MNIST_FILES.items()
        }
        return Mnist(
            train=Images(arrays["train_images"], arrays["train_labels"]),
            test=Images(arrays["test_images"], arrays["test_labels"]),
        )
    if directory is not None:
        needed = ", ".join(name for name, _ in MNIST_FILES.values())
        raise DatasetError(f"MNIST files are missing in {directory} (need {needed}).")
    logger.warning("DIGITS_MNIST_DIR is not set: downloading MNIST with Keras.")
    from keras.datasets import mnist  # only reached by users with internet

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    return Mnist(train=Images(x_train, y_train), test=Images(x_test, y_test))


def pendigits_path() -> Path:
    return Path(settings.DIGITS_PENDIGITS_DIR) / PENDIGITS_FILE


def load_pendigit_strokes(path: Path | None = None) -> list[unipen.PenDigit]:
    """The shared UNIPEN file's digits, its checksum verified (the writer split
    below is defined for exactly this file)."""
    path = path or pendigits_path()
    if not path.exists():
        raise DatasetError(f"Pen-digits file not found: {path}")
    return unipen.read(_verified(path, PENDIGITS_SHA256))


@dataclass
class PenDigitArrays:
    x: np.ndarray  # (n, 28, 28) uint8, after the serving preprocessing
    y: np.ndarray
    writer: np.ndarray
    size: np.ndarray  # the render size used

    def select(self, mask: np.ndarray) -> PenDigitArrays:
        return PenDigitArrays(self.x[mask], self.y[mask], self.writer[mask], self.size[mask])

    def images(self) -> Images:
        return Images(self.x, self.y)


def load_pendigits(
    sizes: tuple[int, ...] = RENDER_SIZES,
    *,
    path: Path | None = None,
    normalise_stroke: bool = True,
    cache: bool = True,
) -> PenDigitArrays:
    """Render every pen digit at each size and preprocess it like a live drawing.

    Rendering 7,494 digits takes about a minute, so the result is cached under
    the data directory, keyed by the file's checksum and the preprocessing
    parameters; a change to either makes a new cache entry.
    """
    key = hashlib.sha256(
        repr(
            (
                PENDIGITS_SHA256,
                preprocessing.PREPROCESSING_VERSION,
                sizes,
                normalise_stroke,
                preprocessing.CANVAS_STROKE_WIDTH,
                preprocessing.TARGET_STROKE_20,
                preprocessing.TARGET_CENTRE,
                preprocessing.INK_THRESHOLD,
            )
        ).encode()
    ).hexdigest()[:16]
    cache_file = Path(settings.DIGITS_DATA_DIR) / "cache" / f"pendigits-{key}.npz"
    if cache and cache_file.exists():
        with np.load(cache_file) as data:
            return PenDigitArrays(data["x"], data["y"], data["writer"], data["size"])

    digits = load_pendigit_strokes(path)
    xs, ys, writers, used = [], [], [], []
    for digit in digits:
        for size in sizes:
            png = canvas.render_strokes(digit.strokes, size)
            model_input = preprocessing.to_model_input(png, normalise_stroke=normalise_stroke)
            xs.append(np.round(model_input * 255.0).astype(np.uint8))
            ys.append(digit.label)
            writers.append(digit.writer)
            used.append(size)
    arrays = PenDigitArrays(
        np.stack(xs),
        np.asarray(ys, dtype=np.uint8),
        np.asarray(writers, dtype=np.int16),
        np.asarray(used, dtype=np.int16),
    )
    if cache:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, x=arrays.x, y=arrays.y, writer=arrays.writer, size=arrays.size)
        tmp.replace(cache_file)
    return arrays


def pendigits_test_split() -> Images:
    """The held-out writers' digits, one rendering each at the size people typically
    draw: the "pendigits" test set every model is judged on."""
    return pendigits_by_role(load_pendigits(sizes=(DEFAULT_RENDER_SIZE,)))["test"].images()


def pendigits_by_role(arrays: PenDigitArrays) -> dict[str, PenDigitArrays]:
    """Split by writer: train / val / test writers never share a person."""
    test = np.isin(arrays.writer, list(PENDIGITS_TEST_WRITERS))
    val = np.isin(arrays.writer, list(PENDIGITS_VAL_WRITERS))
    return {
        "train": arrays.select(~test & ~val),
        "val": arrays.select(val),
        "test": arrays.select(test),
    }


def pendigits_train_digits() -> list[tuple[list[np.ndarray], int]]:
    """The training writers' pen digits as canvas strokes (the page's coordinates)."""
    held_out = PENDIGITS_TEST_WRITERS | PENDIGITS_VAL_WRITERS
    return [
        (canvas.fit_to_canvas(d.strokes), d.label)
        for d in load_pendigit_strokes()
        if d.writer not in held_out
    ]


# Told how loading goes: (step, done, total), e.g. ("rendering pen-digit variants",
# 1200, 7494). Steps are reported as they start and then every so often.
Report = Callable[[str, int, int], None]


def _quiet(step: str, done: int, total: int) -> None:
    pass


REPORT_EVERY = 256  # jobs between reports while variants render


def build_variants(
    jobs: list[tuple], report: Report = _quiet, step: str = "rendering variants"
) -> np.ndarray:
    """Run ``pen.variants`` jobs, in worker processes when there are many (about
    2 ms a variant: 50,000 take under a minute on two cores). Processes are spawned,
    not forked, because the caller may already run TensorFlow's threads. ``report``
    hears how many jobs are done."""
    report(step, 0, len(jobs))
    workers = min(len(os.sched_getaffinity(0)), 8)
    if len(jobs) < 200 or workers < 2 or multiprocessing.current_process().daemon:
        results = map(pen.variants_job, jobs)
        return _collect(results, len(jobs), report, step)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as executor:
        results = executor.map(pen.variants_job, jobs, chunksize=64)
        return _collect(results, len(jobs), report, step)


def _collect(results, total: int, report: Report, step: str) -> np.ndarray:
    collected = []
    for done, result in enumerate(results, 1):
        collected.append(result)
        if done % REPORT_EVERY == 0 or done == total:
            report(step, done, total)
    return np.stack(collected)


def _cached(name: str, key_parts: tuple, build) -> dict[str, np.ndarray]:
    """Arrays under the data directory's cache, keyed by everything that shapes them."""
    key = hashlib.sha256(repr(key_parts).encode()).hexdigest()[:16]
    cache_file = Path(settings.DIGITS_DATA_DIR) / "cache" / f"{name}-{key}.npz"
    if cache_file.exists():
        with np.load(cache_file) as data:
            return {k: data[k] for k in data.files}
    arrays = build()
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(cache_file)
    return arrays


def _synthesis_key() -> tuple:
    return (
        PENDIGITS_SHA256,
        SYNTHESIS_VERSION,
        preprocessing.PREPROCESSING_VERSION,
        preprocessing.CANVAS_STROKE_WIDTH,
        preprocessing.TARGET_STROKE_20,
    )


def pen_pool(
    digits: list[tuple[list[np.ndarray], int]], config: TrainConfig, report: Report = _quiet
) -> Pool:
    """Stroke-space variants of the training writers' pen digits (cached on disk)."""
    count = config.variants

    def build() -> dict[str, np.ndarray]:
        jobs = [
            (strokes, label, count, (config.seed, i), config.style_share, config.scan_share, None)
            for i, (strokes, label) in enumerate(digits)
        ]
        return {
            "x": build_variants(jobs, report, "rendering pen-digit variants (first run only)"),
            "y": np.asarray([label for _, label in digits], np.uint8),
        }

    which = hashlib.sha256(np.concatenate([np.concatenate(s).ravel() for s, _ in digits]).tobytes())
    key = (*_synthesis_key(), config.seed, count, config.style_share, config.scan_share,
           which.hexdigest())  # fmt: skip
    arrays = _cached("penpool", key, build)
    return Pool(
        "pendigits",
        arrays["x"],
        arrays["y"],
        np.ones(len(arrays["y"])),
        draws=PEN_DRAWS_PER_EPOCH * len(arrays["y"]),
    )


def _held_out_digits() -> list[unipen.PenDigit]:
    return [d for d in load_pendigit_strokes() if d.writer in PENDIGITS_TEST_WRITERS]


def style_test_sets() -> dict[str, Images]:
    """The style test set: held-out writers' digits of each style's digit, written
    in that style (never trained on: the writers are held out), drawn as the page
    draws them. ``style:*`` are trained styles, ``probe:*`` ones kept out of training."""

    def build() -> dict[str, np.ndarray]:
        digits = _held_out_digits()
        arrays = {}
        for index, style in enumerate(allographs.ALL_STYLES.values()):
            rng = np.random.default_rng([20261122, index])
            xs = [
                pen.render(style.make(canvas.fit_to_canvas(d.strokes), rng))
                for d in digits
                if d.label == style.digit
            ]
            arrays[style.name] = np.stack(xs)
        return arrays

    arrays = _cached("styles", (*_synthesis_key(), sorted(allographs.ALL_STYLES)), build)
    return {
        f"{'probe' if name in allographs.PROBES else 'style'}:{name}": Images(
            x, np.full(len(x), allographs.ALL_STYLES[name].digit, np.uint8)
        )
        for name, x in arrays.items()
    }


def scan_test_set() -> Images:
    """Held-out writers' digits as scanned or photographed paper digits (uploads)."""

    def build() -> dict[str, np.ndarray]:
        digits = _held_out_digits()
        rng = np.random.default_rng(20261123)
        xs = []
        for d in digits:
            ink = canvas.render_ink(canvas.fit_to_canvas(d.strokes))
            x = preprocessing.to_model_input(pen.scan_like(ink, rng))
            xs.append(np.round(x * 255.0).astype(np.uint8))
        return {"x": np.stack(xs), "y": np.asarray([d.label for d in digits], np.uint8)}

    arrays = _cached("scans", _synthesis_key(), build)
    return Images(arrays["x"], arrays["y"])


def drawings_pool(
    config: TrainConfig,
    exclude_sources: tuple[str, ...] = (),
    skipped: list | None = None,
    report: Report = _quiet,
) -> Pool | None:
    """Approved training drawings as a pool: each drawing's stored picture first, then
    (for drawings with strokes) stroke-space variants. Once there are
    ``DRAWINGS_FOR_SHARE`` of them they fill ``config.drawings_share`` of every batch,
    and corrections are drawn ``config.correction_weight`` times as often.
    Unreadable drawings are left out and listed in ``skipped``
    (``collector.dataset.read_model_input``)."""
    rows = (
        Drawing.objects.filter(status=Drawing.Status.APPROVED, split=Drawing.Split.TRAIN)
        .exclude(source__in=exclude_sources)
        .order_by("id")
    )
    firsts, strokes, labels, weights, seeds = [], [], [], [], []
    total = rows.count()
    report("reading approved drawings", 0, total)
    for done, drawing in enumerate(rows.iterator(chunk_size=500), 1):
        if done % 500 == 0:
            report("reading approved drawings", done, total)
        model_input = dataset.read_model_input(drawing, skipped)
        if model_input is None:
            continue
        firsts.append(np.round(model_input * 255).astype(np.uint8))
        strokes.append(canvas.parse_strokes(drawing.strokes) if drawing.strokes else None)
        labels.append(drawing.label)
        weights.append(config.correction_weight if drawing.source == "correction" else 1.0)
        seeds.append((config.seed, drawing.pk))
    if not firsts:
        return None
    varied = [i for i, kept in enumerate(strokes) if kept]
    count = config.variants if config.augment and varied else 1
    # Every drawing's picture in every slot; those with strokes get varied ones.
    x = np.repeat(np.stack(firsts)[:, None], count, axis=1)
    if count > 1:
        x[varied] = build_variants(
            [(strokes[i], labels[i], count, seeds[i], 0.0, config.scan_share, firsts[i])
             for i in varied],
            report, "rendering variants of contributed drawings",
        )  # fmt: skip
    enough = len(firsts) >= DRAWINGS_FOR_SHARE
    return Pool(
        "drawings",
        x,
        np.asarray(labels, np.uint8),
        np.asarray(weights, np.float64),
        draws=len(firsts),
        share=config.drawings_share if enough and config.drawings_share > 0 else None,
    )


def load_drawings(
    status: str = "approved",
    exclude_sources: tuple[str, ...] = (),
    splits: tuple[str, ...] = ("train", "val", "test"),
    skipped: list | None = None,
) -> dict[str, Images]:
    """Contributed drawings by their stored split, through the serving preprocessing.

    The split was fixed when each drawing arrived, so a drawing in ``test``
    has never been, and never will be, trained on. Unreadable drawings are left
    out and listed in ``skipped``.
    """
    parts: dict[str, tuple[list, list]] = {s: ([], []) for s in ("train", "val", "test")}
    rows = Drawing.objects.filter(status=status, split__in=splits).exclude(
        source__in=exclude_sources
    )
    for drawing in rows.order_by("id").iterator(chunk_size=500):
        model_input = dataset.read_model_input(drawing, skipped)
        if model_input is None:
            continue
        xs, ys = parts[drawing.split]
        xs.append(np.round(model_input * 255).astype(np.uint8))
        ys.append(drawing.label)
    return {
        split: Images(
            np.stack(xs) if xs else np.zeros((0, 28, 28), np.uint8),
            np.asarray(ys, dtype=np.uint8),
        )
        for split, (xs, ys) in parts.items()
    }


def _hold_out(images: Images, rng: np.random.Generator) -> tuple[Images, Images]:
    """``(train, val)``: a random ``VAL_FRACTION`` of the images (at least one) held back."""
    order = rng.permutation(len(images))
    cut = max(1, int(len(order) * VAL_FRACTION))
    val, train = order[:cut], order[cut:]
    return Images(images.x[train], images.y[train]), Images(images.x[val], images.y[val])


def load_emnist() -> tuple[Images, Images]:
    """EMNIST Digits ``(train, test)``, upright, from ``DIGITS_EMNIST_DIR``. Made to
    MNIST's format (28×28, centred in a 20 px box), so used as MNIST is."""
    directory = Path(settings.DIGITS_EMNIST_DIR)
    return (Images(*emnist.read(directory, "train")), Images(*emnist.read(directory, "test")))


def _preprocessed(inks: np.ndarray) -> np.ndarray:
    return np.stack(
        [np.round(preprocessing.ink_to_model_input(ink) * 255).astype(np.uint8) for ink in inks]
    )


def load_usps() -> tuple[Images, Images]:
    """USPS ``(train, test)`` from ``DIGITS_USPS_DIR``: 16×16 scans made 28×28
    model inputs by ``classifier.preprocessing``, like every other picture."""
    directory = Path(settings.DIGITS_USPS_DIR)
    parts = []
    for part in ("train", "test"):
        inks, labels = usps.read(directory, part)
        parts.append(Images(_preprocessed(inks), labels))
    return parts[0], parts[1]


def load_image_folder(path: str | Path, skipped: list | None = None) -> Images:
    """Every image under ``path/<digit>/`` (a scan, a photo, a canvas PNG) through
    the same preprocessing as an upload. Images it refuses (unreadable, blank, too
    small, too large) are left out and listed in ``skipped`` as (file, why)."""
    root = dataset_folder(path)
    xs, ys = [], []
    for file, name in image_folder.files(root):
        label = image_folder.digit(name)
        try:
            if label is None:
                raise preprocessing.PreprocessingError("not in a digit's folder (0 to 9)")
            if file.stat().st_size > preprocessing.MAX_IMAGE_BYTES:
                raise preprocessing.ImageTooLarge("larger than an upload may be")
            x = preprocessing.to_model_input(file.read_bytes())
        except (OSError, preprocessing.PreprocessingError) as exc:
            if skipped is not None:
                skipped.append((str(file.relative_to(root)), str(exc)))
            continue
        xs.append(np.round(x * 255).astype(np.uint8))
        ys.append(label)
    if not xs:
        raise DatasetError(f"{path} holds no image that can be read (one sub-folder per digit).")
    return Images(np.stack(xs), np.asarray(ys, np.uint8))


def load_kaggle_csv(path: Path) -> Images:
    """The Kaggle digit-recognizer training CSV: ``label,pixel0,…,pixel783``, only
    from the datasets folder (``config.dataset_file``)."""
    try:
        path = dataset_file(path)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    return Images(*kaggle_csv.read(path))


# A run's data.


@dataclass
class TrainingData:
    train: Images
    val: Images
    tests: dict[str, Images] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    pools: list[Pool] = field(default_factory=list)

    def __len__(self) -> int:
        """Images per epoch: the fixed ones plus every pool's draws."""
        return len(self.train) + sum(pool.draws for pool in self.pools)


def _take(images: Images, limit: int | None, rng: np.random.Generator) -> Images:
    if limit is None or len(images) <= limit:
        return images
    index = rng.choice(len(images), size=limit, replace=False)
    return Images(images.x[index], images.y[index])


def _concat(parts: list[Images]) -> Images:
    return Images(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]))


def load_training_data(config: TrainConfig, report: Report = _quiet) -> TrainingData:
    """Each source contributes a train, a validation and a test part; tests are
    kept per source so a model is judged separately on each kind of writing.
    ``report`` hears each step, with counts where a step is long."""
    rng = np.random.default_rng(config.seed)
    train, val, tests, manifest = [], [], {}, {}
    pools: list[Pool] = []
    if "mnist" in config.sources:
        report("reading MNIST", 0, 0)
        mnist = load_mnist()
        order = rng.permutation(len(mnist.train))
        held = recipes.recipe(config.recipe).mnist_val  # 5,000 ours, 6,000 the prior work's 90/10
        val_index, train_index = order[:held], order[held:]
        train.append(
            _take(
                Images(mnist.train.x[train_index], mnist.train.y[train_index]),
                config.limit,
                rng,
            )
        )
        val.append(
            _take(
                Images(mnist.train.x[val_index], mnist.train.y[val_index]),
                config.limit,
                rng,
            )
        )
        tests["mnist-test"] = _take(mnist.test, config.limit, rng)
        manifest["mnist"] = dict(MNIST_FILES.values())
    if "pendigits" in config.sources:
        report("reading pen digits", 0, 0)
        roles = pendigits_by_role(load_pendigits())
        writers = pendigits_train_digits()
        if config.limit is not None and len(writers) > config.limit:
            writers = [writers[i] for i in sorted(rng.choice(len(writers), config.limit, False))]
        if config.augment and config.variants > 1:
            pools.append(pen_pool(writers, config, report))
        else:
            train.append(_take(roles["train"].images(), config.limit, rng))
        val.append(_take(roles["val"].images(), config.limit, rng))
        tests["pendigits"] = _take(pendigits_test_split(), config.limit, rng)
        report("rendering the held-out writers' test sets", 0, 0)
        tests["pendigits-scans"] = _take(scan_test_set(), config.limit, rng)
        for name, images in style_test_sets().items():
            tests[name] = _take(images, config.limit, rng)
        manifest["pendigits"] = {
            PENDIGITS_FILE: PENDIGITS_SHA256,
            "test_writers": sorted(PENDIGITS_TEST_WRITERS),
            "val_writers": sorted(PENDIGITS_VAL_WRITERS),
            "render_sizes": list(RENDER_SIZES),
            "variants": config.variants if config.augment else 1,
            "synthesis_version": SYNTHESIS_VERSION,
            "styles": sorted(allographs.STYLES),
            "probes": sorted(allographs.PROBES),
        }
    if "drawings" in config.sources:
        # Pen digits imported as drawings are the pendigits source again, split by
        # drawing instead of by writer: with both, they would leak held-out writers.
        imported = ("import:pendigits",) if "pendigits" in config.sources else ()
        skipped: list = []
        drawings = load_drawings(exclude_sources=imported, splits=("val", "test"), skipped=skipped)
        if len(drawings["test"]):
            tests["drawings-test"] = drawings["test"]  # never trained on: the gate compares
        if len(drawings["val"]):
            val.append(drawings["val"])
        contributed = drawings_pool(config, imported, skipped, report)
        if contributed is not None:
            pools.append(contributed)
        manifest["drawings"] = {**_drawings_manifest(imported), "skipped": skipped}
    if "kaggle" in config.sources:
        kaggle_train, kaggle_val = _hold_out(load_kaggle_csv(config.kaggle_csv), rng)
        val.append(kaggle_val)
        train.append(_take(kaggle_train, config.limit, rng))
        manifest["kaggle"] = {config.kaggle_csv: sha256_of(dataset_file(config.kaggle_csv))}
    for name, loader in (("emnist", load_emnist), ("usps", load_usps)):
        if name not in config.sources:
            continue
        report(f"reading {name.upper()}", 0, 0)
        part, test = loader()
        part_train, part_val = _hold_out(part, rng)
        val.append(_take(part_val, config.limit, rng))
        train.append(_take(part_train, config.limit, rng))
        tests[f"{name}-test"] = _take(test, config.limit, rng)
        manifest[name] = {"train": len(part), "test": len(test)}
    if "folder" in config.sources:
        report("reading the image folder", 0, 0)
        folder = load_image_folder(config.image_folder, folder_skipped := [])
        folder_train, folder_val = _hold_out(folder, rng)
        val.append(folder_val)
        train.append(_take(folder_train, config.limit, rng))
        manifest["folder"] = {
            "path": config.image_folder, "images": len(folder), "skipped": folder_skipped,
        }  # fmt: skip
    if not train and not pools:
        raise DatasetError("The chosen sources hold no training data.")
    train_images = (
        _concat(train) if train else Images(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
    )
    if not val and len(train_images):  # none in val yet: hold back a tenth of train
        order = rng.permutation(len(train_images))
        cut = max(1, len(order) // 10)
        val = [Images(train_images.x[order[:cut]], train_images.y[order[:cut]])]
        train_images = Images(train_images.x[order[cut:]], train_images.y[order[cut:]])
    elif not val:  # only a pool (drawings only): a tenth of its drawings, out of it
        order = rng.permutation(len(pools[0]))
        cut = max(1, len(order) // 10)
        val = [Images(pools[0].x[order[:cut], 0], pools[0].y[order[:cut]])]
        pools[0] = pools[0].select(order[cut:])
    return TrainingData(train_images, _concat(val), tests, manifest, pools)


def _drawings_manifest(excluded_sources: tuple[str, ...]) -> dict:
    """Which drawings a run used, so it can be reproduced: ids and hashes per split."""
    rows = (
        Drawing.objects.filter(status=Drawing.Status.APPROVED)
        .exclude(source__in=excluded_sources)
        .order_by("id")
    )
    return {
        split: [[pk, sha] for pk, sha in rows.filter(split=split).values_list("id", "sha256")]
        for split in ("train", "val", "test")
    }
