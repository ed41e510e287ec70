"""Pen strokes → the PNG the page's canvas sends: the one place that draws like the canvas.

Imports of pen digits, training's pen-digit source, tests and benchmarks all
render strokes here, and the result goes through ``classifier.preprocessing``
exactly like a live drawing, so there is no train/serve skew. ``static/digits/
pad.js`` draws the same way in the browser: black ink, alpha as coverage,
round caps and joins, anti-aliased, ``CANVAS_STROKE_WIDTH`` px on 256×256.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from classifier.preprocessing import CANVAS_SIZE, CANVAS_STROKE_WIDTH

# How big people draw on the 256 px canvas: the digit's longer side in px.
DEFAULT_RENDER_SIZE = 180


def fit_to_canvas(
    strokes: Sequence[np.ndarray], size: float = DEFAULT_RENDER_SIZE, canvas: int = CANVAS_SIZE
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
    canvas_strokes: Sequence[np.ndarray],
    stroke_width: float = CANVAS_STROKE_WIDTH,
    canvas: int = CANVAS_SIZE,
    supersample: int = 2,
) -> bytes:
    """Draw strokes given in canvas pixels as the page's canvas does and return the
    256×256 RGBA PNG it would send."""
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


def render_strokes(strokes: Sequence[np.ndarray], size: float = DEFAULT_RENDER_SIZE) -> bytes:
    """Tablet strokes (y up), drawn ``size`` px large in the middle of the canvas."""
    return render_canvas_png(fit_to_canvas(strokes, size))
