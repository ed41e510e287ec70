"""Fuzzing the image decoder path on its own (faster than over HTTP, so many more
inputs): any bytes at all either become a valid model input or a typed
``PreprocessingError`` with a message, never another exception."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from classifier import preprocessing as pp

# Pillow warns about the broken files it is fed here; the assertions are what matter.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I", "I;16", "F", "YCbCr", "LAB", "HSV"]
FORMATS = ["PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "ICO", "PPM"]


@st.composite
def images(draw) -> bytes:
    """Pictures of every mode, size and format Pillow can write, with random content."""
    mode = draw(st.sampled_from(MODES))
    width, height = draw(st.integers(1, 96)), draw(st.integers(1, 96))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (height, width, 4), dtype=np.uint8), "RGBA")
    if draw(st.booleans()):  # mostly empty, like a canvas with a few strokes
        alpha = np.zeros((height, width), np.uint8)
        alpha[rng.integers(0, height, 5), rng.integers(0, width, 5)] = 255
        base.putalpha(Image.fromarray(alpha))
    try:
        image = base.convert(mode)
    except (ValueError, OSError):
        image = base
    out = io.BytesIO()
    fmt = draw(st.sampled_from(FORMATS))
    try:
        image.save(out, fmt)
    except (OSError, ValueError, KeyError):
        out = io.BytesIO()
        base.save(out, "PNG")
    data = out.getvalue()
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    if cut is not None:
        data = data[:cut]
    for _ in range(draw(st.integers(0, 4))):
        if data:
            index = draw(st.integers(0, len(data) - 1))
            data = data[:index] + bytes([draw(st.integers(0, 255))]) + data[index + 1 :]
    return data


def test_formats_we_do_not_need_are_never_parsed():
    """A TIFF (or PSD, …) is refused without Pillow's parser for it looking inside."""
    out = io.BytesIO()
    Image.new("RGBA", (64, 64)).save(out, "TIFF")
    with pytest.raises(pp.UndecodableImage, match=r"not a readable image \(PNG"):
        pp.to_model_input(out.getvalue())


def check(data: bytes) -> None:
    try:
        x = pp.to_model_input(data)
    except pp.PreprocessingError as exc:
        assert str(exc) and exc.code
        return
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1


@settings(
    max_examples=2500, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(images())
def test_any_picture_is_an_input_or_a_typed_refusal(data):
    check(data)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.binary(max_size=2048))
def test_any_bytes_are_an_input_or_a_typed_refusal(data):
    check(data)


@pytest.mark.parametrize(
    ("fmt", "side", "message"),
    [
        ("PNG", 5000, "5000×5000; at most 1024×1024"),
        ("WEBP", 5000, "5000×5000; at most 1024×1024"),
        ("GIF", 5000, "5000×5000; at most 1024×1024"),
        # past Pillow's own bomb limit: refused when the header is opened
        ("PNG", 20000, "too many pixels"),
        ("GIF", 20000, "too many pixels"),
    ],
)
def test_a_huge_declared_size_is_refused_before_decoding(fmt, side, message):
    """A small file that would decode into millions of pixels: refused by its header."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, fmt)
    assert len(out.getvalue()) < pp.MAX_IMAGE_BYTES
    with pytest.raises(pp.ImageTooLarge, match=message):
        pp.to_model_input(out.getvalue())
