"""Pen strokes → the PNG the page's canvas sends: the one place that draws like the canvas.

It also says what strokes *are*: the page records each drawing as a list of
strokes, each a list of ``[x, y, t]`` points (canvas pixels, milliseconds since
the first point); :func:`parse_strokes` is the one strict check of that shape.

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

from classifier.preprocessing import (
    CANVAS_SIZE,
    CANVAS_STROKE_WIDTH,
    MAX_SIDE,
    MIN_SPAN_TO_STROKE,
    UndecodableImage,
)
from digits_site.refusals import Refused

# How big people draw on the 256 px canvas: the digit's longer side in px.
DEFAULT_RENDER_SIZE = 180


def fit_to_canvas(
    strokes: Sequence[np.ndarray],
    size: float = DEFAULT_RENDER_SIZE,
    canvas: int = CANVAS_SIZE,
    *,
    y_up: bool = True,
) -> list[np.ndarray]:
    """Tablet strokes (y up; ``y_up=False`` for strokes already in canvas
    coordinates) to canvas coordinates (y down), as a person would draw: centred,
    the longer side ``size`` px, aspect ratio kept. Only x and y are used."""
    strokes = [np.asarray(s, dtype=np.float64)[:, :2] for s in strokes]
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float(max(high - low)) or 1.0
    scale = size / extent
    centre = (low + high) / 2.0
    fitted = []
    for stroke in strokes:
        xy = (stroke - centre) * scale
        if y_up:
            xy[:, 1] = -xy[:, 1]
        fitted.append(xy + canvas / 2.0)
    return fitted


def render_ink(
    canvas_strokes: Sequence[np.ndarray],
    stroke_width: float = CANVAS_STROKE_WIDTH,
    canvas: int = CANVAS_SIZE,
    supersample: int = 2,
) -> np.ndarray:
    """The canvas' alpha channel (uint8 coverage, 255 = ink) for strokes in canvas
    pixels: exactly what ``preprocessing.decode_ink`` reads from the page's PNG, so
    training can skip the PNG round trip. Only x and y of each point are used."""
    big = canvas * supersample
    alpha = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(alpha)
    width = stroke_width * supersample
    radius = width / 2.0
    for stroke in canvas_strokes:
        points = [(float(p[0]) * supersample, float(p[1]) * supersample) for p in stroke]
        if len(points) > 1:
            draw.line(points, fill=255, width=round(width), joint="curve")
        for x, y in (points[0], points[-1]):  # round caps
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(alpha.resize((canvas, canvas), Image.Resampling.BOX))


def render_canvas_png(
    canvas_strokes: Sequence[np.ndarray],
    stroke_width: float = CANVAS_STROKE_WIDTH,
    canvas: int = CANVAS_SIZE,
    supersample: int = 2,
) -> bytes:
    """Draw strokes given in canvas pixels as the page's canvas does and return the
    256×256 RGBA PNG it would send."""
    alpha = Image.fromarray(render_ink(canvas_strokes, stroke_width, canvas, supersample))
    rgba = Image.merge("RGBA", (*(Image.new("L", (canvas, canvas), 0),) * 3, alpha))
    out = io.BytesIO()
    rgba.save(out, format="PNG")
    return out.getvalue()


# Past the pen's half width, the pixels the page keeps around its ink when it sends
# only that part of the pad (anti-aliasing reaches about one pixel further).
PIECE_MARGIN = 2


def ink_box(
    canvas_strokes: Sequence[np.ndarray],
    stroke_width: float = CANVAS_STROKE_WIDTH,
    canvas: int = CANVAS_SIZE,
) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)``, whole pixels on the canvas, of every pixel the
    strokes ink: what the page cuts out of its pad for a live prediction
    (``static/digits/pad.js``'s ``exportPiece`` computes the same)."""
    points = np.concatenate([np.asarray(s, dtype=np.float64)[:, :2] for s in canvas_strokes])
    reach = stroke_width / 2 + PIECE_MARGIN
    low = np.floor(points.min(axis=0) - reach).clip(0, canvas)
    high = np.ceil(points.max(axis=0) + reach).clip(0, canvas)
    return int(low[0]), int(low[1]), int(high[0]), int(high[1])


def render_canvas_piece(
    canvas_strokes: Sequence[np.ndarray], canvas: int = CANVAS_SIZE
) -> tuple[bytes, dict[str, int]]:
    """What the page sends for a live prediction: the PNG of the part of its pad
    with ink, and where that part lies (the request's ``canvas`` field)."""
    left, top, right, bottom = ink_box(canvas_strokes, canvas=canvas)
    alpha = Image.fromarray(render_ink(canvas_strokes, canvas=canvas)[top:bottom, left:right])
    blank = Image.new("L", alpha.size, 0)
    out = io.BytesIO()
    Image.merge("RGBA", (blank, blank, blank, alpha)).save(out, format="PNG")
    return out.getvalue(), {"left": left, "top": top, "width": canvas, "height": canvas}


def place(ink: np.ndarray, placement: tuple[int, int, int, int]) -> np.ndarray:
    """A piece of a canvas (``preprocessing.decode_ink``'s ink map) put back where it
    was cut from: ``placement`` is ``(left, top, width, height)`` of the blank canvas
    around it. Everything after reads the whole canvas, so the answer is the one the
    whole canvas gets, bit for bit, for a quarter of the pixels to decode."""
    left, top, width, height = placement
    if not (8 <= width <= MAX_SIDE and 8 <= height <= MAX_SIDE):
        raise UndecodableImage(
            f"The canvas is {width}×{height}; from 8×8 to {MAX_SIDE}×{MAX_SIDE} is accepted."
        )
    rows, cols = ink.shape
    if left < 0 or top < 0 or left + cols > width or top + rows > height:
        raise UndecodableImage(
            f"The {cols}×{rows} image does not fit on the {width}×{height} canvas at "
            f"({left}, {top})."
        )
    if (rows, cols) == (height, width):
        return ink
    whole = np.zeros((height, width), np.uint8)
    whole[top : top + rows, left : left + cols] = ink
    return whole


def render_strokes(strokes: Sequence[np.ndarray], size: float = DEFAULT_RENDER_SIZE) -> bytes:
    """Tablet strokes (y up), drawn ``size`` px large in the middle of the canvas."""
    return render_canvas_png(fit_to_canvas(strokes, size))


# What one drawing may hold: generous for any digit (a slow, careful finger on a
# 120 Hz screen gives a few hundred points a stroke), small enough to store.
MAX_STROKES = 64
MAX_POINTS_PER_STROKE = 2000
MAX_POINTS = 8000
MAX_DURATION_MS = 10 * 60 * 1000
# Pointer events may land a little outside the canvas while a stroke leaves it.
COORDINATE_SLACK = 32


# Strokes agree with their picture when, compared on a grid of MATCH_CELL px cells,
# nearly all of each one's ink lies within MATCH_REACH cells of the other's: the
# page's own anti-aliasing, its device-pixel rendering and the pen's width move
# ink a few pixels, a different digit moves it tens. Measured on 40 held-out pen
# writers' 1s and 7s drawn as the page draws them: a drawing and its own strokes
# agree at 100 % (still 100 % with every point moved 3 px); a 1's picture with a
# 7's strokes at 47 % (median) and at most 74 %. About 2 ms a check.
MATCH_CELL = 4
MATCH_REACH = 2
MATCH_SHARE = 0.95
MATCH_INK = 64  # of 255: coverage that counts as ink


class StrokesDoNotMatch(Refused, ValueError):
    """The strokes do not draw the picture they came with."""

    code = "strokes_do_not_match"


def _cells(ink: np.ndarray) -> np.ndarray:
    """Which MATCH_CELL-px cells of a 256×256 ink map hold ink: the cells' maxima,
    taken over strided views (a sixth of the time of comparing every pixel first,
    which every prediction with strokes pays)."""
    strongest = ink[::MATCH_CELL, ::MATCH_CELL].copy()
    for dy in range(MATCH_CELL):
        for dx in range(MATCH_CELL):
            if dy or dx:
                np.maximum(strongest, ink[dy::MATCH_CELL, dx::MATCH_CELL], out=strongest)
    return strongest >= MATCH_INK


def _near(cells: np.ndarray) -> np.ndarray:
    """Cells within MATCH_REACH of an inked cell (a square around each), grown along
    the rows and then the columns: ten shifts instead of twenty-five."""
    reach, side = MATCH_REACH, cells.shape[0]
    padded = np.zeros((side + 2 * reach, side + 2 * reach), bool)
    padded[reach : reach + side, reach : reach + side] = cells
    rows = padded[:, :side].copy()
    for dx in range(1, 2 * reach + 1):
        rows |= padded[:, dx : dx + side]
    grown = rows[:side].copy()
    for dy in range(1, 2 * reach + 1):
        grown |= rows[dy : dy + side]
    return grown


def check_strokes_match(strokes: Sequence[np.ndarray], picture_ink: np.ndarray) -> None:
    """Raise :class:`StrokesDoNotMatch` unless ``strokes`` (canvas pixels) draw the
    picture whose ink map is ``picture_ink`` (``preprocessing.decode_ink``; any
    size, compared as the 256×256 canvas): strokes decide how a drawing is varied
    for training and read, so they must be the picture's own."""
    if picture_ink.shape != (CANVAS_SIZE, CANVAS_SIZE):
        resized = Image.fromarray(picture_ink).resize((CANVAS_SIZE, CANVAS_SIZE))
        picture_ink = np.asarray(resized)
    picture, drawn = _cells(picture_ink), _cells(render_ink(strokes))
    for ink, other in ((picture, drawn), (drawn, picture)):
        total = int(ink.sum())
        if total and (ink & _near(other)).sum() < MATCH_SHARE * total:
            raise StrokesDoNotMatch(
                "The strokes do not draw the picture they came with; send the page's own "
                "strokes of this drawing, or none."
            )


def _path_cells(strokes: Sequence[np.ndarray]) -> np.ndarray:
    """The MATCH_CELL-px cells the pen's path passes through (points every half cell
    along each stroke: no rendering)."""
    side = CANVAS_SIZE // MATCH_CELL
    cells = np.zeros((side, side), bool)
    for stroke in strokes:
        points = np.asarray(stroke, dtype=np.float64)[:, :2]
        if len(points) > 1:
            steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
            along = np.concatenate([[0.0], np.cumsum(steps)])
            where = np.linspace(0.0, along[-1], max(2, int(along[-1] / (MATCH_CELL / 2)) + 2))
            points = np.column_stack([np.interp(where, along, points[:, i]) for i in (0, 1)])
        index = np.clip((points // MATCH_CELL).astype(np.int64), 0, side - 1)
        cells[index[:, 1], index[:, 0]] = True
    return cells


def strokes_agree(strokes: Sequence[np.ndarray], picture_ink: np.ndarray) -> bool:
    """Whether ``strokes`` trace the picture whose ink map is ``picture_ink``: the
    cells the pen's path passes through against the picture's inked cells, each
    nearly all within reach of the other, as :func:`check_strokes_match` does with
    the strokes rendered. The quick form (about a tenth of a millisecond) for a
    prediction, which reads the pen only when it is the picture's own and
    otherwise answers from the picture; what is stored is checked the full way."""
    if picture_ink.shape != (CANVAS_SIZE, CANVAS_SIZE):
        resized = Image.fromarray(picture_ink).resize((CANVAS_SIZE, CANVAS_SIZE))
        picture_ink = np.asarray(resized)
    picture, drawn = _cells(picture_ink), _path_cells(strokes)
    for ink, other in ((picture, drawn), (drawn, picture)):
        total = int(ink.sum())
        if total and (ink & _near(other)).sum() < MATCH_SHARE * total:
            return False
    return True


def pad_settings() -> dict[str, float]:
    """What the page's pad needs to draw as this module draws and to send only what
    :func:`parse_strokes` accepts: the template puts these on the canvas as
    ``data-`` attributes, so ``pad.js`` holds no copy of them."""
    return {
        "canvas_size": CANVAS_SIZE,
        "stroke_width": CANVAS_STROKE_WIDTH,
        "max_strokes": MAX_STROKES,
        "max_points_per_stroke": MAX_POINTS_PER_STROKE,
        "max_points": MAX_POINTS,
        # The page asks for no answer while its ink is smaller than this many pen
        # widths (``preprocessing.ink_to_model_input(legible=True)`` would refuse it).
        "min_span_to_stroke": MIN_SPAN_TO_STROKE,
        # Kept around the ink when the page sends only that part of its pad (ink_box).
        "piece_margin": PIECE_MARGIN,
    }


class InvalidStrokes(Refused, ValueError):
    """The strokes are not what the page records; the message says what is wrong (an
    API answers it as a 400)."""

    code = "invalid_strokes"


def parse_strokes(value: object, canvas: int = CANVAS_SIZE) -> list[np.ndarray]:
    """Check strokes as the page sends them and return them as (n, 3) float arrays.

    Strict on purpose: a list of 1…``MAX_STROKES`` strokes, each a non-empty list
    of ``[x, y, t]`` finite numbers, x and y within the canvas (give or take
    ``COORDINATE_SLACK``), t in milliseconds from 0 and never going backwards.
    """
    if not isinstance(value, list) or not value:
        raise InvalidStrokes("strokes must be a non-empty list of strokes.")
    if len(value) > MAX_STROKES:
        raise InvalidStrokes(f"At most {MAX_STROKES} strokes; got {len(value)}.")
    low, high = -COORDINATE_SLACK, canvas + COORDINATE_SLACK
    total = 0
    parsed: list[np.ndarray] = []
    last_t = 0.0
    for index, stroke in enumerate(value):
        where = f"stroke {index + 1}"
        if not isinstance(stroke, list) or not stroke:
            raise InvalidStrokes(f"{where} must be a non-empty list of [x, y, t] points.")
        if len(stroke) > MAX_POINTS_PER_STROKE:
            raise InvalidStrokes(
                f"{where} has {len(stroke)} points; at most {MAX_POINTS_PER_STROKE}."
            )
        total += len(stroke)
        if total > MAX_POINTS:
            raise InvalidStrokes(f"At most {MAX_POINTS} points in all.")
        try:
            points = np.array(stroke, dtype=np.float64)
            # NumPy would also take "1" or true as numbers; JSON numbers only here.
            numbers = {type(v) for point in stroke for v in point} <= {int, float}
        except (TypeError, ValueError, OverflowError):  # a 400-digit integer is no coordinate
            numbers = False
        if not numbers or points.ndim != 2 or points.shape[1] != 3 or not np.isfinite(points).all():
            raise InvalidStrokes(f"{where}: every point must be [x, y, t], three finite numbers.")
        if points[:, :2].min() < low or points[:, :2].max() > high:
            raise InvalidStrokes(f"{where}: points must lie on the {canvas}×{canvas} canvas.")
        t = points[:, 2]
        if t[0] < last_t or (np.diff(t) < 0).any() or t[-1] > MAX_DURATION_MS:
            raise InvalidStrokes(
                f"{where}: t must be milliseconds since the first point, never going back."
            )
        last_t = float(t[-1])
        parsed.append(points)
    return parsed


def strokes_as_json(strokes: Sequence[np.ndarray]) -> list:
    """Strokes as stored and exported: x and y to 0.1 px, t in whole milliseconds."""
    return [
        [[round(float(x), 1), round(float(y), 1), round(float(t))] for x, y, t in stroke]
        for stroke in strokes
    ]


def timed(strokes: Sequence[np.ndarray], interval_ms: float = 10.0) -> list[np.ndarray]:
    """Give untimed (n, 2) strokes a time axis, one point every ``interval_ms``."""
    out, t = [], 0.0
    for stroke in strokes:
        times = t + interval_ms * np.arange(len(stroke))
        out.append(np.column_stack([np.asarray(stroke, dtype=np.float64)[:, :2], times]))
        t = float(times[-1]) + interval_ms
    return out
