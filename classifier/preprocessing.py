"""Turn what the canvas (or an upload) sends into the model's 28×28 input.

This module is the only place that does it: serving calls it on requests and
training calls it on stored drawings and rendered pen strokes, so the model sees
live drawings exactly the way it saw its training data.

The recipe is the one MNIST itself was made with (LeCun et al.): crop to the
ink, scale the longer side to 20 px with anti-aliasing, and place the result in
a 28×28 field so that the ink's centre of mass sits at the centre. On top of
that we normalise stroke thickness, because a 16 px canvas stroke on a digit
that fills the canvas becomes a hairline at 20 px, much thinner than MNIST's
pen strokes (measured in ``benchmarks/stroke_normalisation.py``).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator

import numpy as np
from django.conf import settings
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from digits_site.refusals import Refused

# Bump when the algorithm below changes: cached renderings of pen digits (and
# any model trained on them) belong to one version.
PREPROCESSING_VERSION = 3

# What the page draws with; the template passes these to the JavaScript so the
# page and the pen-stroke renderer used for training can never disagree.
CANVAS_SIZE = 256
CANVAS_STROKE_WIDTH = 16

# Derived from the request-body limit, the one setting (``DIGITS_MAX_REQUEST_BYTES``).
MAX_IMAGE_BYTES = settings.DIGITS_MAX_IMAGE_BYTES
MAX_SIDE = 1024
MODEL_SIDE = 28
DIGIT_BOX = 20
# MNIST's centre of mass, measured over its 60,000 training images (row, col).
TARGET_CENTRE = (14.0, 14.0)

# Ink below this (of 255) is anti-aliasing fringe or paper noise, not a stroke.
INK_THRESHOLD = 40
# Fewer strong-ink pixels than this fraction of the image is "nothing drawn".
MIN_INK_FRACTION = 0.0004
MIN_INK_PIXELS = 12
# Ink whose longer side spans less than this fraction of the picture's longer side
# is a dot, a stray tap or a smudge: far too small to be a digit (a digit drawn
# on the page spans 30 to 90 %, and MNIST's box fills 71 % of its image).
MIN_INK_SPAN = 0.1
# Ink whose longer side is less than this many of its own stroke widths is a blob:
# the page's 16 px pen turns a digit drawn at 12 to 15 % of the pad into one (a 3
# there was read as an 8 at 99 %). Digits drawn at a usable size measure 12 to 18.
MIN_SPAN_TO_STROKE = 4.5
# A scan whose darkest strokes are less than this far from its paper is blank.
MIN_SCAN_CONTRAST = 48

# Stroke thickness in the 20 px box that MNIST's pens produce: the median over
# 3,000 training digits, estimated exactly as for drawings (2·area / perimeter
# at the 4× working scale, threshold 128). Quartiles were 1.63 and 2.26.
TARGET_STROKE_20 = 1.9
# Work at 4× the final box so thickening/thinning has sub-pixel precision.
_WORK_SIDE = DIGIT_BOX * 4

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "BMP", "GIF"})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What a decoder is allowed to walk through, counted on the raw bytes first. The
# canvas' PNG has 3 chunks, a phone camera's a few hundred IDATs at most; a
# progressive JPEG has about 10 scans. A 2 MB PNG of 174,000 empty chunks took
# 0.9 s to decode, a progressive JPEG of 170,000 empty scans 17 s.
MAX_PNG_CHUNKS = 1024
MAX_JPEG_SCANS = 64


class PreprocessingError(Refused, ValueError):
    """Base class: the input cannot become a model input. The message is for users,
    and an API answers it as a 400 with ``code`` (a 413 for :class:`ImageTooLarge`)."""

    code = "invalid_image"


class ImageTooLarge(PreprocessingError):
    status = 413
    code = "image_too_large"


class UndecodableImage(PreprocessingError):
    code = "undecodable_image"


class BlankDrawing(PreprocessingError):
    code = "blank_drawing"


class InkTooSmall(PreprocessingError):
    code = "too_small"


class ImageTooComplex(PreprocessingError):
    """Small in bytes, but built to cost a decoder seconds (thousands of chunks or
    scans): refused from its structure, before any pixel is decoded."""

    code = "image_too_complex"


def decode_ink(data: bytes) -> np.ndarray:
    """Decode image bytes to an ink map (uint8, 255 = full ink), refusing hostile input.

    The canvas sends black strokes on a transparent background, so the alpha
    channel *is* the ink. Images without (useful) alpha are treated as paper:
    ink is the darkness, or the brightness when the paper is dark.
    """
    with _image_errors():
        image = _open_checked(data)
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            image.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous
    return _ink_from_image(image)


def declared_pixels(data: bytes) -> int:
    """The pixels an image says it has, read from its header alone (nothing decoded):
    what a request is charged before any work is done on it. Raises like
    :func:`decode_ink` for what it would refuse from the header."""
    with _image_errors():
        width, height = _open_checked(data).size
    return width * height


def header_pixels(data: bytes) -> int | None:
    """:func:`declared_pixels`, or None for a header it would refuse (later, with a reason)."""
    try:
        return declared_pixels(data)
    except PreprocessingError:
        return None


@contextlib.contextmanager
def _image_errors() -> Iterator[None]:
    try:
        with warnings.catch_warnings():
            # A decompression bomb must become our error, never Pillow's warning.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except PreprocessingError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge("The image declares too many pixels.") from exc
    except UnidentifiedImageError as exc:
        raise UndecodableImage(
            "The data is not a readable image (PNG, JPEG, WebP, BMP or GIF)."
        ) from exc
    except Exception as exc:  # Pillow raises many types for broken files.
        raise UndecodableImage("The data is not a readable image.") from exc


def _open_checked(data: bytes) -> Image.Image:
    """The image, opened but not decoded, once its size and frames pass."""
    if not data:
        raise UndecodableImage("The image is empty.")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageTooLarge(
            f"The image is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES} bytes."
        )
    _check_structure(data)
    # Only these formats' parsers ever see the bytes: Pillow's many other
    # plugins (TIFF, PSD, …) are attack surface we do not need.
    image = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
    width, height = image.size
    # Checked from the header, before a single pixel is decoded.
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageTooLarge(
            f"The image is {width}×{height}; at most {MAX_SIDE}×{MAX_SIDE} is accepted."
        )
    if width < 8 or height < 8:
        raise UndecodableImage(f"The image is {width}×{height}; at least 8×8 is needed.")
    if getattr(image, "n_frames", 1) > 1:
        raise UndecodableImage("Animated images are not accepted; send one frame.")
    return image


def as_png(data: bytes, longest: int = 512) -> bytes:
    """Any readable image (PNG, JPEG, WebP, BMP, GIF) as a PNG, its longer side at
    most ``longest`` pixels: how a staff upload of a scan or a photo is stored (the
    model reads 28×28; more pixels than this only cost storage). A PNG that fits is
    returned unchanged."""
    with _image_errors():
        image = _open_checked(data)
        if image.format == "PNG" and max(image.size) <= longest:
            return data
        image = ImageOps.exif_transpose(image)  # a phone photo's own orientation
        clear = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("RGBA" if clear else "RGB")
        image.thumbnail((longest, longest), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "PNG", optimize=True)
        return out.getvalue()


def is_png(data: bytes) -> bool:
    """Whether the bytes say they are a PNG (its signature: nothing decoded)."""
    return data[:8] == PNG_SIGNATURE


def claimed_format(data: bytes) -> str | None:
    """The format the first bytes claim (one of ALLOWED_FORMATS), or None: a look at
    the signature only, so an endpoint can refuse what it does not take unread."""
    if is_png(data):
        return "PNG"
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM":
        return "BMP"
    return None


def _check_structure(data: bytes) -> None:
    """Refuse a PNG of more than MAX_PNG_CHUNKS chunks or a JPEG of more than
    MAX_JPEG_SCANS scans, counted on the bytes (microseconds) before a decoder
    walks them (up to seconds)."""
    if is_png(data):
        offset, chunks = 8, 0
        while offset + 8 <= len(data):
            chunks += 1
            if chunks > MAX_PNG_CHUNKS:
                raise ImageTooComplex(
                    f"The PNG has more than {MAX_PNG_CHUNKS} chunks; save it again plainly."
                )
            length = int.from_bytes(data[offset : offset + 4], "big")
            if data[offset + 4 : offset + 8] == b"IEND":
                break
            offset += 12 + length  # length, type, data, CRC
    # A JPEG's start-of-scan markers: entropy-coded data never holds 0xFF 0xDA (a 0xFF
    # there is followed by 0x00), so the count is over, never under.
    elif data[:2] == b"\xff\xd8" and data.count(b"\xff\xda") > MAX_JPEG_SCANS:
        raise ImageTooComplex(
            f"The JPEG has more than {MAX_JPEG_SCANS} scans; save it again plainly."
        )


def _ink_from_image(image: Image.Image) -> np.ndarray:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        # The canvas' own mode: its alpha band read alone, not the image copied to RGBA.
        band = image.getchannel("A") if image.mode == "RGBA" else image.convert("RGBA")
        alpha = np.asarray(band) if band.mode == "L" else np.asarray(band)[:, :, 3]
        if alpha.min() < 250:  # a real transparency mask, not an opaque scan
            return np.ascontiguousarray(alpha)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        luminance = np.asarray(image, dtype=np.float32)
        top = float(luminance.max()) or 1.0
        luminance = (luminance / top * 255.0).astype(np.uint8)
    else:
        luminance = np.asarray(image.convert("L"))
    # Decide which side is paper from the border: most borders are background.
    border = np.concatenate([luminance[0], luminance[-1], luminance[:, 0], luminance[:, -1]])
    if np.median(border) >= 128:  # light paper: ink is the darkness
        luminance, border = 255 - luminance, 255 - border
    return _stretch_paper(luminance, border)


def _stretch_paper(ink: np.ndarray, border: np.ndarray) -> np.ndarray:
    """Scans and photos: grey paper becomes no ink and the darkest strokes full ink.

    Off-white paper (say 200 of 255) would otherwise be "ink" everywhere, and a
    faint pencil digit would be too light to find. A page with no contrast is
    left as it is, so blank paper stays blank instead of becoming amplified noise.
    """
    paper = float(np.median(border))
    darkest = float(np.percentile(ink, 99.8))
    if darkest - paper < MIN_SCAN_CONTRAST:
        return np.ascontiguousarray(np.clip(ink.astype(np.int16) - int(paper), 0, 255), np.uint8)
    if paper <= 0 and darkest >= 250:
        return np.ascontiguousarray(ink, dtype=np.uint8)  # already clean: nothing to do
    stretched = (ink.astype(np.float32) - paper) * (255.0 / (darkest - paper))
    return np.clip(np.round(stretched), 0, 255).astype(np.uint8)


def ink_to_model_input(
    ink: np.ndarray, *, normalise_stroke: bool = True, legible: bool = False
) -> np.ndarray:
    """Map an ink image of any size to the 28×28 float32 model input, MNIST-style.

    ``legible``: also refuse, as too small, ink whose strokes run together (its
    longer side under ``MIN_SPAN_TO_STROKE`` of its stroke widths: a digit drawn so
    small for its pen that the model would read a blob). Asked of what people send
    for an answer; training data is not refused this way. Measured on the working
    image the stroke normalisation measures anyway, so it costs nothing more."""
    ink = np.asarray(ink)
    if ink.ndim != 2 or ink.size == 0:
        raise UndecodableImage("Expected a two-dimensional image.")
    if not np.issubdtype(ink.dtype, np.integer):
        ink = np.clip(np.nan_to_num(ink.astype(np.float32)), 0.0, 255.0)
    ink = ink.astype(np.uint8, copy=False)
    strong = ink >= INK_THRESHOLD
    needed = max(MIN_INK_PIXELS, int(MIN_INK_FRACTION * ink.size))
    if np.count_nonzero(strong) < needed:
        raise BlankDrawing("Nothing is drawn: draw a digit first.")

    crop = _crop_to_ink(ink, strong)
    if max(crop.shape) < MIN_INK_SPAN * max(ink.shape):
        raise InkTooSmall(
            "The ink is too small to be a digit (a dot or a stray mark): draw the digit "
            "bigger, or crop the picture closer to it."
        )

    work = _resize_longer_side(crop, _WORK_SIDE)
    thickness = stroke_thickness(work) if normalise_stroke or legible else 0.0
    if legible and thickness > 0 and thickness * MIN_SPAN_TO_STROKE > _WORK_SIDE:
        raise InkTooSmall(
            "At this size the strokes run together into a blob: draw the digit bigger."
        )
    if normalise_stroke:
        # Thinning or thickening moves the ink's edges: crop and scale again, so the
        # normalised ink (not the pen's) fills the box, as in MNIST. Without this a
        # small, heavy drawing came out a few per cent smaller than a large one.
        work = _crop_to_ink(_normalise_stroke(work, thickness))
        work = _resize_longer_side(work, _WORK_SIDE)
    box = _resize_longer_side(work, DIGIT_BOX).astype(np.float32) / 255.0
    return _place_by_centre_of_mass(box)


def _crop_to_ink(ink: np.ndarray, strong: np.ndarray | None = None) -> np.ndarray:
    """``ink`` cropped to its strong ink (``strong``: that mask, when already made)."""
    if strong is None:
        strong = ink >= INK_THRESHOLD
    rows = np.flatnonzero(strong.any(axis=1))
    cols = np.flatnonzero(strong.any(axis=0))
    if not len(rows):
        return ink
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def as_bytes(model_input: np.ndarray) -> np.ndarray:
    """A [0, 1] float model input as the uint8 every store of inputs keeps."""
    return np.round(np.asarray(model_input, np.float32) * 255.0).astype(np.uint8)


def to_model_input(data: bytes, *, normalise_stroke: bool = True) -> np.ndarray:
    """Bytes of an image (the canvas PNG) to the 28×28 float32 model input."""
    return ink_to_model_input(decode_ink(data), normalise_stroke=normalise_stroke)


def _resize_longer_side(ink: np.ndarray, side: int) -> np.ndarray:
    height, width = ink.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Pillow's LANCZOS widens its kernel when shrinking, i.e. it is anti-aliased.
    return np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.LANCZOS))


def stroke_thickness(ink: np.ndarray, threshold: int = 128) -> float:
    """Mean stroke width in pixels, as 2·area / perimeter of the thresholded ink.

    For a stroke of width w and length L the area is w·L and the outline about
    2·L, so the ratio is w: cheap, vectorised and good enough to steer a dilation.
    """
    mask = np.asarray(ink) >= threshold
    area = int(np.count_nonzero(mask))
    if area == 0:
        return 0.0
    # Changes between neighbours, the image's edge counting as no ink (as if padded).
    edges = int(
        np.count_nonzero(mask[1:] != mask[:-1])
        + np.count_nonzero(mask[0]) + np.count_nonzero(mask[-1])
        + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
        + np.count_nonzero(mask[:, 0]) + np.count_nonzero(mask[:, -1])
    )  # fmt: skip
    return 2.0 * area / max(edges, 1)


def _normalise_stroke(work: np.ndarray, current: float) -> np.ndarray:
    """Bring hairline and heavy strokes towards MNIST's pen width (a disc grows or
    shrinks each side of a stroke by its radius, so the width changes by 2·radius);
    ``current``: the work image's :func:`stroke_thickness`."""
    target = TARGET_STROKE_20 * _WORK_SIDE / DIGIT_BOX
    if current <= 0:
        return work
    op = np.maximum if current < target else np.minimum
    radius = abs(target - current) / 2.0
    # Blend the two nearest whole radii, so the width changes smoothly with the
    # drawing's size instead of in 2-px jumps.
    whole = int(radius)
    fraction = radius - whole
    if whole > 4:  # never grow or erode by more than 4 px a side (1 px at 20 px)
        whole, fraction = 4, 0.0
    inner = _morph(work, whole, op) if whole else work
    if fraction < 0.05:
        return inner
    outer = _morph(work, whole + 1, op)
    if op is np.maximum:  # dilation grows the frame by the radius: align the two
        pad = (outer.shape[0] - inner.shape[0]) // 2
        inner = np.pad(inner, pad)
    blended = (1.0 - fraction) * inner.astype(np.float32) + fraction * outer.astype(np.float32)
    return np.round(blended).astype(np.uint8)


def _morph(ink: np.ndarray, radius: int, op) -> np.ndarray:
    """Grey-level dilation (np.maximum) or erosion (np.minimum) with a disc, the
    outside of the image taken as no ink.

    A dilation returns the image grown by ``radius`` on each side (exactly the
    grown ink's frame); an erosion keeps the size. Each shift of the disc is a
    view into one image padded twice over, combined in place: no array per shift
    (``np.roll`` made one each, a third of a canvas prediction's preprocessing)."""
    height, width = ink.shape[0] + 2 * radius, ink.shape[1] + 2 * radius
    big = np.zeros((ink.shape[0] + 4 * radius, ink.shape[1] + 4 * radius), ink.dtype)
    big[2 * radius : 2 * radius + ink.shape[0], 2 * radius : 2 * radius + ink.shape[1]] = ink
    out = big[radius : radius + height, radius : radius + width].copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx > radius * radius + radius or not (dy or dx):
                continue
            top, left = radius - dy, radius - dx
            op(out, big[top : top + height, left : left + width], out=out)
    if op is np.maximum:
        return out
    return out[radius : height - radius, radius : width - radius]


def _place_by_centre_of_mass(box: np.ndarray) -> np.ndarray:
    total = float(box.sum())
    rows, cols = np.indices(box.shape)
    com_row = float((rows * box).sum() / total)
    com_col = float((cols * box).sum() / total)
    top = round(TARGET_CENTRE[0] - com_row)
    left = round(TARGET_CENTRE[1] - com_col)
    field = np.zeros((MODEL_SIDE, MODEL_SIDE), dtype=np.float32)
    # Intersect the shifted box with the field (a lopsided digit may overhang).
    src_top, src_left = max(0, -top), max(0, -left)
    dst_top, dst_left = max(0, top), max(0, left)
    height = min(box.shape[0] - src_top, MODEL_SIDE - dst_top)
    width = min(box.shape[1] - src_left, MODEL_SIDE - dst_left)
    if height > 0 and width > 0:
        field[dst_top : dst_top + height, dst_left : dst_left + width] = box[
            src_top : src_top + height, src_left : src_left + width
        ]
    return np.clip(field, 0.0, 1.0)
