"""classifier.preprocessing: canvas PNG (or upload) → MNIST-style 28×28 input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from PIL import Image

from classifier import canvas
from classifier import preprocessing as pp
from training.sources import pendigits as pen_source


def png(image: Image.Image, **save) -> bytes:
    out = io.BytesIO()
    image.save(out, format=save.pop("format", "PNG"), **save)
    return out.getvalue()


def distance_up_to_one_pixel(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference, minimised over shifts of at most one pixel."""
    padded = np.pad(b, 1)
    return min(
        float(np.abs(a - padded[1 + dy : 29 + dy, 1 + dx : 29 + dx]).mean())
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(x.shape)
    return float((rows * x).sum() / x.sum()), float((cols * x).sum() / x.sum())


@pytest.fixture(scope="module")
def strokes():
    return pen_source.load_pendigit_strokes()[:60]


def test_canvas_alpha_is_the_ink(canvas_png):
    # given a canvas PNG: black strokes, transparent background
    data = canvas_png(3)
    # when
    x = pp.to_model_input(data)
    # then: ink is bright on dark, in [0, 1], float32, 28×28, with a 4-px margin like MNIST
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert x.max() == pytest.approx(1.0, abs=0.05) and x.min() == 0.0
    assert x[:2].sum() == 0 and x[-2:].sum() == 0
    assert 0.08 < (x > 0.5).mean() < 0.5


def test_opaque_scan_and_dark_paper_match_the_alpha_drawing(canvas_png):
    # given the same drawing as RGBA, as dark ink on white paper, and as white ink on black
    rgba = Image.open(io.BytesIO(canvas_png(5)))
    alpha = np.asarray(rgba)[:, :, 3]
    paper = Image.fromarray(255 - alpha).convert("RGB")
    dark = Image.fromarray(alpha).convert("L")
    # when
    reference = pp.to_model_input(png(rgba))
    from_paper = pp.to_model_input(png(paper))
    from_dark = pp.to_model_input(png(dark))
    # then all three give the same model input
    assert np.abs(from_paper - reference).max() < 0.02
    assert np.abs(from_dark - reference).max() < 0.02


def test_other_sizes_and_modes_are_accepted(canvas_png):
    rgba = Image.open(io.BytesIO(canvas_png(2)))
    reference = pp.to_model_input(png(rgba))
    big = rgba.resize((1024, 1024), Image.Resampling.LANCZOS)
    small = rgba.resize((64, 64), Image.Resampling.LANCZOS)
    paletted = rgba.convert("P")
    sixteen = Image.fromarray((255 - np.asarray(rgba)[:, :, 3]).astype(np.uint16) * 257)
    for variant in (big, small, paletted, sixteen):
        x = pp.to_model_input(png(variant))
        assert np.isfinite(x).all()
        assert np.abs(x - reference).mean() < 0.05, variant.mode


# A fixed seed keeps CI reproducible; the counterexample random exploration
# found is pinned below as a regression test instead of being re-found at random.
# The seed is explicit: ``derandomize`` derives it from the test's source, so a
# mere rename changed the examples (and drew the pinned gap: index 26 at 90 px).
# Of seeds 0-5, only seed 0 draws that same pinned example; none finds another.
@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@seed(1)
@given(
    index=st.integers(0, 59),
    size=st.floats(90, 230),
    dx=st.floats(-1, 1),
    dy=st.floats(-1, 1),
)
def test_same_strokes_anywhere_and_any_size_give_nearly_the_same_input(
    strokes, index, size, dx, dy
):
    # given one real pen digit drawn at a reference place and size
    digit = strokes[index]
    reference = pp.to_model_input(canvas.render_strokes(digit.strokes, 180))
    # when the same strokes are drawn elsewhere on the canvas, bigger or smaller
    fitted = canvas.fit_to_canvas(digit.strokes, size)
    margin = (pp.CANVAS_SIZE - size) / 2 - pp.CANVAS_STROKE_WIDTH
    moved = [s + np.array([dx * margin, dy * margin]) for s in fitted]
    x = pp.to_model_input(canvas.render_canvas_png(moved))
    # then the model sees nearly the same image (up to the one-pixel rounding of
    # MNIST's whole-pixel centring), centred the same way, always in range
    assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0
    assert distance_up_to_one_pixel(x, reference) < 0.05
    row, col = centre_of_mass(x)
    assert abs(row - pp.TARGET_CENTRE[0]) <= 0.5 and abs(col - pp.TARGET_CENTRE[1]) <= 0.5


# Once a known gap found by Hypothesis (0.060 > 0.05): stroke normalisation moved
# the ink's edges, so a small heavy zero came out smaller than a large one. Fixed in
# PREPROCESSING_VERSION 3 by cropping and scaling again after normalisation.
def test_a_small_and_a_large_zero_meet_the_same_bound(strokes):
    digit = strokes[26]
    reference = pp.to_model_input(canvas.render_strokes(digit.strokes, 180))
    small = pp.to_model_input(canvas.render_strokes(digit.strokes, 90))
    assert distance_up_to_one_pixel(small, reference) < 0.05


def test_thin_strokes_are_thickened_towards_mnist_pen_width(strokes):
    # given a digit drawn large with a hairline stroke
    fitted = canvas.fit_to_canvas(strokes[0].strokes, 230)
    thin = pp.decode_ink(canvas.render_canvas_png(fitted, stroke_width=4))
    # when preprocessed with and without normalisation
    plain = pp.ink_to_model_input(thin, normalise_stroke=False)
    normalised = pp.ink_to_model_input(thin, normalise_stroke=True)
    # then normalisation brings the stroke close to MNIST's median width
    width = lambda x: pp.stroke_thickness(np.round(x * 255).astype(np.uint8))  # noqa: E731
    assert width(normalised) > width(plain) * 1.3
    assert abs(width(normalised) - pp.TARGET_STROKE_20) < abs(width(plain) - pp.TARGET_STROKE_20)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGBA", (256, 256), (0, 0, 0, 0)),
        Image.new("RGB", (256, 256), "white"),
    ],
    ids=["transparent", "white paper"],
)
def test_blank_drawing_is_a_typed_error(image):
    with pytest.raises(pp.BlankDrawing):
        pp.to_model_input(png(image))


def test_a_few_stray_pixels_are_still_blank():
    image = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    for xy in [(10, 10), (200, 40), (128, 128)]:
        image.putpixel(xy, (0, 0, 0, 255))
    with pytest.raises(pp.BlankDrawing):
        pp.to_model_input(png(image))


def test_not_an_image():
    with pytest.raises(pp.UndecodableImage):
        pp.to_model_input(b"<html><script>alert(1)</script></html>")
    with pytest.raises(pp.UndecodableImage):
        pp.to_model_input(b"")


def test_truncated_png(canvas_png):
    data = canvas_png(1)
    with pytest.raises(pp.UndecodableImage):
        pp.to_model_input(data[: len(data) // 2])


def test_huge_declared_dimensions_are_refused_before_decoding():
    # a 1-bit 3000×3000 PNG is tiny on disk but would be 9 M pixels decoded
    data = png(Image.new("1", (3000, 3000)), optimize=True)
    assert len(data) < 10_000
    with pytest.raises(pp.ImageTooLarge):
        pp.to_model_input(data)


def test_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(pp.ImageTooLarge):
        pp.to_model_input(png(Image.new("L", (400, 400), 255)))


def test_bytes_over_the_limit_are_refused():
    with pytest.raises(pp.ImageTooLarge):
        pp.to_model_input(b"\x89PNG" + b"\0" * pp.MAX_IMAGE_BYTES)


def test_animated_and_tiny_images_are_refused():
    frames = [Image.new("L", (64, 64), v) for v in (0, 255)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(pp.UndecodableImage, match="Animated"):
        pp.to_model_input(out.getvalue())
    for side in (1, 4):
        with pytest.raises(pp.UndecodableImage):
            pp.to_model_input(png(Image.new("L", (side, side))))
