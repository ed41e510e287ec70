"""How alike two drawings look: a client's near-copies of their own drawings are
answered as duplicates (``collector.abuse``), however the copy was made.

A print is the drawing's ink at half size, cropped to its box, its longer side
scaled to 48 of 64 px, blurred (a Gaussian of 2 px) and reduced to 24×24 (576
bytes): the box takes out moving and rescaling, the blur a thicker or thinner
pen. Two prints are compared by the cosine distance of their mean-free values,
and the new drawing is also printed turned by up to 4° each way, so a slightly
rotated copy meets its original at its own angle.

Measured on 1,800 pairs of the same digit written twice by the same UNIPEN writer
and on 300 drawings each turned by 2°, shrunk to 0.9 and with its ink dilated by
2 px (a thicker pen): every such copy was within 0.0126 of its original, and 99 %
of copies turned by −3° within 0.012; 0.22 % of the real pairs were within 0.013,
so ``DIGITS_NEAR_DUPLICATE_DISTANCE`` is 0.013 (the README has the figures). The
catch costs a contributor about one drawing in 450 of a digit they had drawn
before, answered "already in" rather than stored; the thresholded pixels used
before caught none of the turned copies. The stored thresholded 28×28 prints
(98 bytes) are still compared bit by bit, as then.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

SIZE = 24
BOX = 64
FILL = 48
BLUR = 2.0
ANGLES = (0, -1, 1, -2, 2, -3, 3, -4, 4)
INK = 40  # of 255: fainter pixels are anti-aliasing, not the drawing's box
# Upright, a copy turned by 4.5° is within 0.18 of its original (300 pen digits):
# only stored prints this close are compared at every angle, which costs a new
# drawing eight more prints (about 2.5 ms).
UPRIGHT_REACH = 0.25
LEGACY_BYTES = 98
LEGACY_BITS = 3


def _print(ink: Image.Image) -> np.ndarray:
    pixels = np.asarray(ink)
    rows, cols = np.nonzero(pixels > INK)
    if not len(rows):
        return np.zeros(SIZE * SIZE, np.uint8)
    crop = Image.fromarray(pixels[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
    scale = FILL / max(crop.size)
    crop = crop.resize(
        (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))),
        Image.Resampling.BOX,
    )
    box = Image.new("L", (BOX, BOX))
    box.paste(crop, ((BOX - crop.width) // 2, (BOX - crop.height) // 2))
    box = box.filter(ImageFilter.GaussianBlur(BLUR)).resize((SIZE, SIZE), Image.Resampling.BOX)
    return np.asarray(box, np.uint8).reshape(-1)


def _half(ink: np.ndarray) -> Image.Image:
    """The ink at half size: a print is 24×24, and turning a quarter of the pixels
    is four times cheaper."""
    return Image.fromarray(np.asarray(ink, np.uint8)).reduce(2)


def fingerprint(ink: np.ndarray) -> bytes:
    """What is stored with a drawing: its print upright. ``ink``: the canvas-sized
    coverage ``preprocessing.decode_ink`` reads."""
    return _print(_half(ink)).tobytes()


def turned_prints(ink: np.ndarray, angles: tuple[int, ...] = ANGLES) -> np.ndarray:
    """A new drawing's prints at each of ``angles``, one row each."""
    image = _half(ink)
    return np.stack([
        _print(image.rotate(angle, resample=Image.Resampling.BILINEAR) if angle else image)
        for angle in angles
    ])  # fmt: skip


def _unit(prints: np.ndarray) -> np.ndarray:
    values = prints.astype(np.float32)
    values -= values.mean(axis=-1, keepdims=True)
    return values / (np.linalg.norm(values, axis=-1, keepdims=True) + 1e-6)


def distances(ink: np.ndarray, stored: list[bytes]) -> np.ndarray:
    """Each stored print's distance to the new drawing (``ink``) at its closest
    angle; those far from it upright are not turned (their distance stays the
    upright one, above UPRIGHT_REACH)."""
    if not stored:
        return np.zeros(0, np.float32)
    table = _unit(np.frombuffer(b"".join(stored), np.uint8).reshape(len(stored), -1))
    upright = np.frombuffer(fingerprint(ink), np.uint8)[None]
    found = (1.0 - _unit(upright) @ table.T)[0]
    near = np.flatnonzero(found <= UPRIGHT_REACH)
    if len(near):  # the other angles (upright is done)
        turned = _unit(turned_prints(ink, tuple(a for a in ANGLES if a)))
        found[near] = np.minimum(found[near], (1.0 - turned @ table[near].T).min(axis=0))
    return found


def legacy_bits(model_input: np.ndarray) -> bytes:
    """The print stored before this one: the 28×28 input, thresholded and packed."""
    return np.packbits(np.asarray(model_input).reshape(-1) >= 0.5).tobytes()


def legacy_distances(model_input: np.ndarray, stored: list[bytes]) -> np.ndarray:
    """Pixels that differ between the new drawing's thresholded input and each
    stored legacy print."""
    if not stored:
        return np.zeros(0, np.int64)
    table = np.frombuffer(b"".join(stored), np.uint8).reshape(len(stored), -1)
    mine = np.frombuffer(legacy_bits(model_input), np.uint8)
    return np.unpackbits(table ^ mine, axis=1).sum(axis=1)
