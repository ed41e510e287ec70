"""Where training data comes from: MNIST's IDX files and UNIPEN pen strokes.

Everything is returned as 28×28 uint8 arrays (ink bright on dark) plus labels,
so sources can be concatenated. Pen strokes are rendered the way the page's
canvas renders them and then go through ``classifier.preprocessing`` exactly
like a live drawing: no train/serve skew.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from PIL import Image, ImageDraw

from classifier import preprocessing

logger = logging.getLogger(__name__)

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
# Training renders each digit at several sizes, because the stroke is a fixed
# 16 px whatever the size, so size changes the relative stroke weight.
RENDER_SIZES = (96, 150, 200)
DEFAULT_RENDER_SIZE = 180


class DatasetError(RuntimeError):
    """A dataset is missing, corrupt or not what it claims to be."""


class ChecksumMismatch(DatasetError):
    pass


@dataclass
class Split:
    x: np.ndarray  # (n, 28, 28) uint8
    y: np.ndarray  # (n,) uint8

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Mnist:
    train: Split
    test: Split


@dataclass
class PenDigit:
    label: int
    writer: int
    sample: int
    strokes: list[np.ndarray] = field(default_factory=list)  # each (n, 2) tablet x, y


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


def parse_idx(data: bytes) -> np.ndarray:
    """Parse an (uncompressed) IDX file: big-endian header, then unsigned bytes."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError("Not an unsigned-byte IDX file.")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DatasetError(f"IDX body has {len(data) - header} bytes, header says {expected}.")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


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
            key: parse_idx(gzip.decompress(_verified(directory / name, digest).read_bytes()))
            for key, (name, digest) in MNIST_FILES.items()
        }
        return Mnist(
            train=Split(arrays["train_images"], arrays["train_labels"]),
            test=Split(arrays["test_images"], arrays["test_labels"]),
        )
    if directory is not None:
        needed = ", ".join(name for name, _ in MNIST_FILES.values())
        raise DatasetError(f"MNIST files are missing in {directory} (need {needed}).")
    logger.warning("DIGITS_MNIST_DIR is not set: downloading MNIST with Keras.")
    from keras.datasets import mnist  # only reached by users with internet

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    return Mnist(train=Split(x_train, y_train), test=Split(x_test, y_test))


def pendigits_path() -> Path:
    return Path(settings.DIGITS_PENDIGITS_DIR) / PENDIGITS_FILE


_SEGMENT = re.compile(r'\.SEGMENT\s+DIGIT\s+[\d-]+\s+\S+\s+"(\d)"')


def parse_unipen(text: str) -> list[PenDigit]:
    """Parse UNIPEN digits: ``.SEGMENT`` starts a digit, ``.PEN_DOWN``…``.PEN_UP`` a stroke."""
    digits: list[PenDigit] = []
    current: PenDigit | None = None
    stroke: list[tuple[int, int]] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith(".SEGMENT"):
            match = _SEGMENT.match(line)
            if match is None:
                raise DatasetError(f"Unreadable segment line: {line!r}")
            current = PenDigit(label=int(match.group(1)), writer=-1, sample=-1)
            digits.append(current)
        elif line.startswith(".COMMENT") and current is not None:
            parts = line.split()
            current.writer, current.sample = int(parts[2]), int(parts[3])
        elif line.startswith(".PEN_DOWN"):
            stroke = []
        elif line.startswith(".PEN_UP"):
            if current is not None and stroke:
                current.strokes.append(np.asarray(stroke, dtype=np.float32))
            stroke = None
        elif stroke is not None and not line.startswith("."):
            x, y = line.split()[:2]
            stroke.append((int(x), int(y)))
    return [d for d in digits if d.strokes]


def load_pendigit_strokes(path: Path | None = None) -> list[PenDigit]:
    path = path or pendigits_path()
    if not path.exists():
        raise DatasetError(f"Pen-digits file not found: {path}")
    _verified(path, PENDIGITS_SHA256)
    return parse_unipen(gzip.decompress(path.read_bytes()).decode("ascii"))


def fit_to_canvas(
    strokes: list[np.ndarray],
    size: float = DEFAULT_RENDER_SIZE,
    canvas: int = preprocessing.CANVAS_SIZE,
) -> list[np.ndarray]:
    """Tablet strokes (y up) to canvas coordinates (y down), as a person would draw:
    centred, the longer side ``size`` px, aspect ratio kept."""
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float(max(high - low)) or 1.0
    scale = size / extent
    centre = (low + high) / 2.0
    fitted = []
    for stroke in strokes:
        xy = (stroke - centre) * scale
        xy[:, 1] = -xy[:, 1]
        fitted.append(xy + canvas / 2.0)
    return fitted


def render_canvas_png(
    canvas_strokes: list[np.ndarray],
    stroke_width: float = preprocessing.CANVAS_STROKE_WIDTH,
    canvas: int = preprocessing.CANVAS_SIZE,
    supersample: int = 2,
) -> bytes:
    """Draw strokes as the page's canvas does (black ink, alpha as coverage, round
    caps and joins, anti-aliased) and return the 256×256 RGBA PNG it would send."""
    big = canvas * supersample
    alpha = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(alpha)
    width = stroke_width * supersample
    radius = width / 2.0
    for stroke in canvas_strokes:
        points = [(float(x) * supersample, float(y) * supersample) for x, y in stroke]
        if len(points) > 1:
            draw.line(points, fill=255, width=round(width), joint="curve")
        for x, y in (points[0], points[-1]):  # round caps
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    alpha = alpha.resize((canvas, canvas), Image.Resampling.BOX)
    rgba = Image.merge("RGBA", (*(Image.new("L", (canvas, canvas), 0),) * 3, alpha))
    out = io.BytesIO()
    rgba.save(out, format="PNG")
    return out.getvalue()


def render_pendigit(digit: PenDigit, size: float = DEFAULT_RENDER_SIZE) -> bytes:
    return render_canvas_png(fit_to_canvas(digit.strokes, size))


@dataclass
class PenDigitArrays:
    x: np.ndarray  # (n, 28, 28) uint8, after the serving preprocessing
    y: np.ndarray
    writer: np.ndarray
    size: np.ndarray  # the render size used

    def select(self, mask: np.ndarray) -> PenDigitArrays:
        return PenDigitArrays(self.x[mask], self.y[mask], self.writer[mask], self.size[mask])

    def split(self) -> Split:
        return Split(self.x, self.y)


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
            png = render_pendigit(digit, size)
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


def pendigits_test_split() -> Split:
    """The held-out writers' digits, one rendering each at the size people typically
    draw: the "pendigits" test set every model is judged on."""
    return pendigits_by_role(load_pendigits(sizes=(DEFAULT_RENDER_SIZE,)))["test"].split()


def pendigits_by_role(arrays: PenDigitArrays) -> dict[str, PenDigitArrays]:
    """Split by writer: train / val / test writers never share a person."""
    test = np.isin(arrays.writer, list(PENDIGITS_TEST_WRITERS))
    val = np.isin(arrays.writer, list(PENDIGITS_VAL_WRITERS))
    return {
        "train": arrays.select(~test & ~val),
        "val": arrays.select(val),
        "test": arrays.select(test),
    }


def load_drawings(
    status: str = "approved", exclude_sources: tuple[str, ...] = ()
) -> dict[str, Split]:
    """Contributed drawings by their stored split, through the serving preprocessing.

    The split was fixed when each drawing arrived, so a drawing in ``test``
    has never been, and never will be, trained on.
    """
    from django.core.files.storage import default_storage

    from collector.models import Drawing

    parts: dict[str, tuple[list, list]] = {s: ([], []) for s in ("train", "val", "test")}
    rows = Drawing.objects.filter(status=status).exclude(source__in=exclude_sources)
    for drawing in rows.order_by("id").iterator(chunk_size=500):
        with default_storage.open(drawing.image.name, "rb") as handle:
            model_input = preprocessing.to_model_input(handle.read())
        xs, ys = parts[drawing.split]
        xs.append(np.round(model_input * 255).astype(np.uint8))
        ys.append(drawing.label)
    return {
        split: Split(
            np.stack(xs) if xs else np.zeros((0, 28, 28), np.uint8),
            np.asarray(ys, dtype=np.uint8),
        )
        for split, (xs, ys) in parts.items()
    }


def load_kaggle_csv(path: Path) -> Split:
    """The Kaggle digit-recognizer training CSV: ``label,pixel0,…,pixel783``."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"Kaggle CSV not found: {path}")
    with open(path, encoding="ascii") as handle:
        header = handle.readline().strip().split(",")
        if header[:2] != ["label", "pixel0"] or len(header) != 785:
            raise DatasetError(f"{path} is not a Kaggle train CSV (label,pixel0..pixel783).")
        try:
            table = np.loadtxt(handle, delimiter=",", dtype=np.int64, ndmin=2)
        except ValueError as exc:
            raise DatasetError(f"{path}: {exc}") from exc
    if table.size == 0:
        raise DatasetError(f"{path} has no rows.")
    if (
        table.shape[1] != 785
        or table.min() < 0
        or table[:, 1:].max() > 255
        or table[:, 0].max() > 9
    ):
        raise DatasetError(f"{path}: expected 785 columns of labels 0-9 and pixels 0-255.")
    return Split(table[:, 1:].reshape(-1, 28, 28).astype(np.uint8), table[:, 0].astype(np.uint8))
