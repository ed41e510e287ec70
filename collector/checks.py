"""What a drawing must be before it is stored: a digit label, a PNG that
preprocessing accepts, and, for contributions, the pad's own size and depth.
Checked from the bytes' header where possible, before anything is decoded."""

from __future__ import annotations

import numpy as np

from classifier import preprocessing


class InvalidDrawing(ValueError):
    """The drawing cannot be stored; the message is for the contributor."""

    code = "invalid_drawing"


def validate_label(label) -> int:
    """An integer 0-9, or a one-character ASCII digit string: nothing else (not the
    superscript, circled, Arabic-Indic or full-width digits ``str.isdigit`` lets
    through, which ``int`` either refuses or reads as another number)."""
    if isinstance(label, str) and len(label) == 1 and label in "0123456789":
        return int(label)
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label <= 9:
        return label
    raise InvalidDrawing("label must be a digit from 0 to 9.")


def validate_png(data: bytes, model_input: np.ndarray | None = None) -> np.ndarray:
    """Stored drawings are PNGs that preprocessing accepts (so training can use them);
    their model input. ``model_input``: the caller's own preprocessing of ``data``,
    which proves it accepted, so a drawing is preprocessed once."""
    require_png(data)
    if model_input is None:
        # Raises PreprocessingError with a clear message.
        model_input = preprocessing.to_model_input(data)
    return model_input


def require_canvas_png(data: bytes) -> None:
    """Contributions are stored as the drawing pad sends them: a PNG of at most
    256×256 pixels and 8 bits per channel (the pad's is exactly that, about 5 kB).
    A 500×500 16-bit PNG was 2 MB for one unit of the rate limit; refused from its
    header, before it is decoded."""
    require_png(data)
    size = preprocessing.CANVAS_SIZE
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth = data[24] if len(data) > 24 else 0
    if data[12:16] != b"IHDR" or not (0 < width <= size and 0 < height <= size) or depth > 8:
        raise InvalidDrawing(
            f"Contributions are stored as the drawing pad sends them: a PNG of at most "
            f"{size}×{size} pixels, 8 bits per channel (this one is {width}×{height}, "
            f"{depth}-bit). Scale it down or save it as 8-bit."
        )


def require_png(data: bytes) -> None:
    """Drawings are stored as PNG: anything else is refused from its first bytes,
    before a decoder sees it (another image format is told to send a PNG; what is no
    image at all is told so)."""
    claimed = preprocessing.claimed_format(data)
    if claimed is None:
        raise preprocessing.UndecodableImage(
            "The data is not a readable image (PNG, JPEG, WebP, BMP or GIF)."
        )
    if claimed != "PNG":
        raise InvalidDrawing("Drawings are stored as PNG: send a PNG image.")
