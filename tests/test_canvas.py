"""classifier.canvas: pen strokes drawn as the page's canvas draws them."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from classifier import canvas, preprocessing


def test_rendering_matches_the_canvas(pen_digits):
    # the page's canvas: 256×256 RGBA, transparent paper, black ink, alpha = coverage
    image = Image.open(io.BytesIO(canvas.render_strokes(pen_digits[0].strokes)))
    assert image.size == (256, 256) and image.mode == "RGBA"
    rgba = np.asarray(image)
    assert rgba[:, :, :3].max() == 0
    assert rgba[0, 0, 3] == 0 and rgba[:, :, 3].max() == 255
    # anti-aliased edges: partial coverage exists
    assert ((rgba[:, :, 3] > 0) & (rgba[:, :, 3] < 255)).any()
    # y grows upward on the tablet, downward on the canvas: an "8"'s first point
    # (top of the loop on the tablet) lands in the canvas' upper half
    eight = next(d for d in pen_digits if d.label == 7)
    fitted = canvas.fit_to_canvas(eight.strokes)
    top_y = fitted[0][np.argmax(eight.strokes[0][:, 1])][1]
    assert top_y < 128


def test_a_single_point_is_a_round_dot_of_the_pen_width():
    png = canvas.render_canvas_png([np.array([[128.0, 128.0]])])
    alpha = np.asarray(Image.open(io.BytesIO(png)))[:, :, 3]
    rows, cols = np.nonzero(alpha > 127)
    width = preprocessing.CANVAS_STROKE_WIDTH
    assert abs((rows.max() - rows.min() + 1) - width) <= 1
    assert abs((cols.max() - cols.min() + 1) - width) <= 1
