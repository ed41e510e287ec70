"""Stroke-space augmentation: the ways people vary when they write the same digit.

MNIST-style image warps cannot make a pen lift, a shorter stroke end, a mouse's
jagged line or a 6 px line where the page draws 16 px. Varying the *strokes*
can, and every variant is then drawn by the one canvas renderer
(``classifier.canvas``) and sent through ``classifier.preprocessing``, exactly
like a live drawing: the model never sees an input the product could not make.

Scans and photos of paper digits arrive as uploads, not strokes: ``scan_like``
turns a rendering into such a picture (grey paper, blur, low resolution, ink
spread, noise, JPEG) and it goes through the upload path of the same
preprocessing.

All coordinates are canvas pixels, y down (``classifier.canvas``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from classifier import canvas, preprocessing
from classifier.preprocessing import CANVAS_SIZE


@dataclass(frozen=True)
class StrokeJitter:
    """How far each kind of variation goes (uniform ± unless said otherwise)."""

    slant: float = 0.35  # shear of x by y: upright to strongly italic, both ways
    rotation_degrees: float = 8.0
    aspect: float = 0.18  # x stretched or squeezed relative to y
    stroke_shift: float = 0.05  # each stroke moved, as a share of the digit's size
    stroke_scale: float = 0.1
    stroke_rotation_degrees: float = 7.0
    trim_probability: float = 0.35  # a stroke end cut short (hurried pens, late touches)
    trim: float = 0.1  # at most this share of the stroke's length
    tremor: float = 0.012  # smooth wobble along the stroke, share of size
    widths: tuple[float, float] = (6.0, 28.0)  # line widths people use on the canvas
    canvas_width_share: float = 0.5  # how often the page's own 16 px line is kept
    sizes: tuple[float, float] = (70.0, 235.0)  # the digit's longer side on the canvas


def resample(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points every ``spacing`` along the polyline (its ends kept)."""
    if len(points) < 2:
        return points
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    length = float(steps.sum())
    if length <= spacing:
        return points[[0, -1]]
    along = np.concatenate([[0.0], np.cumsum(steps)])
    targets = np.linspace(0.0, length, max(2, round(length / spacing) + 1))
    return np.column_stack([np.interp(targets, along, points[:, i]) for i in range(2)])


def _trim(points: np.ndarray, share: float, at_start: bool) -> np.ndarray:
    if len(points) < 3:
        return points
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    cut = along[-1] * share
    keep = along >= cut if at_start else along <= along[-1] - cut
    return points[keep] if keep.sum() >= 2 else points


def rotation(angle: float) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, -sin], [sin, cos]])


def vary(
    strokes: Sequence[np.ndarray],
    rng: np.random.Generator,
    jitter: StrokeJitter = StrokeJitter(),
) -> tuple[list[np.ndarray], float]:
    """One plausible other way of writing the same digit: ``(canvas strokes, line width)``."""
    strokes = [np.asarray(s, dtype=np.float64)[:, :2] for s in strokes if len(s)]
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float(max(high - low)) or 1.0
    centre = (low + high) / 2.0
    unit = [(s - centre) / extent for s in strokes]  # longer side 1, centred

    def u(limit: float) -> float:
        return float(rng.uniform(-limit, limit))

    varied = []
    for stroke in unit:
        middle = stroke.mean(axis=0)
        turn = rotation(np.radians(u(jitter.stroke_rotation_degrees)))
        scale = 1.0 + u(jitter.stroke_scale)
        shift = np.array([u(jitter.stroke_shift), u(jitter.stroke_shift)])
        stroke = (stroke - middle) @ turn.T * scale + middle + shift
        if rng.random() < jitter.trim_probability:
            stroke = _trim(stroke, rng.uniform(0.02, jitter.trim), at_start=rng.random() < 0.5)
        # Sampling: a tablet's sparse points (a polyline with corners), a mouse's or a
        # finger's dense points with jagged noise, or the pen's own.
        mode = rng.random()
        if mode < 0.3:
            stroke = resample(stroke, rng.uniform(0.04, 0.09))
        elif mode < 0.65:
            stroke = resample(stroke, rng.uniform(0.006, 0.015))
            stroke = stroke + rng.normal(0.0, rng.uniform(0.001, 0.007), stroke.shape)
        if jitter.tremor and len(stroke) >= 4 and rng.random() < 0.5:
            knots = rng.normal(0.0, jitter.tremor, (4, 2))
            where = np.linspace(0, 3, len(stroke))
            stroke = stroke + np.column_stack(
                [np.interp(where, range(4), knots[:, i]) for i in (0, 1)]
            )
        varied.append(stroke)

    # The whole digit: rotation, slant (x sheared by height; y grows downward) and aspect.
    shape = rotation(np.radians(u(jitter.rotation_degrees)))
    shape = np.array([[1.0 + u(jitter.aspect), -u(jitter.slant)], [0.0, 1.0]]) @ shape
    varied = [s @ shape.T for s in varied]

    # Size, line width and place on the canvas.
    size = float(rng.uniform(*jitter.sizes))
    low_w, high_w = jitter.widths
    if rng.random() < jitter.canvas_width_share:
        width = float(canvas.CANVAS_STROKE_WIDTH)
    else:
        high_w = min(high_w, max(low_w, size * 0.2))  # a thick pen draws big, not a blob
        width = float(np.exp(rng.uniform(np.log(low_w), np.log(high_w))))
    points = np.concatenate(varied)
    low, high = points.min(axis=0), points.max(axis=0)
    scale = size / (float(max(high - low)) or 1.0)
    span = (high - low) * scale
    room = np.maximum(0.0, CANVAS_SIZE - span - width) / 2.0
    offset = (
        CANVAS_SIZE / 2.0 + np.array([u(room[0]), u(room[1])]) if room.any() else CANVAS_SIZE / 2.0
    )
    middle = (low + high) / 2.0
    return [(s - middle) * scale + offset for s in varied], width


def render(strokes: Sequence[np.ndarray], width: float = canvas.CANVAS_STROKE_WIDTH) -> np.ndarray:
    """Canvas strokes → the 28×28 uint8 model input, through the serving preprocessing."""
    ink = canvas.render_ink(strokes, stroke_width=width)
    return np.round(preprocessing.ink_to_model_input(ink) * 255.0).astype(np.uint8)


def renders_job(job: tuple) -> np.ndarray:
    """``(strokes, sizes, normalise_stroke)`` → the strokes drawn at each size (a
    pen-sized canvas) and preprocessed like a live drawing, ``(len(sizes), 28, 28)``
    uint8: a picklable job for worker processes."""
    strokes, sizes, normalise_stroke = job
    return np.stack([
        np.round(preprocessing.to_model_input(
            canvas.render_strokes(strokes, size), normalise_stroke=normalise_stroke
        ) * 255.0).astype(np.uint8)
        for size in sizes
    ])  # fmt: skip


def scan_like(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A rendering (canvas alpha) as a scanned or photographed paper digit: the
    image bytes an upload would carry."""
    strong = np.argwhere(ink >= preprocessing.INK_THRESHOLD)
    (top, left), (bottom, right) = strong.min(axis=0), strong.max(axis=0)
    side = int(max(bottom - top, right - left)) + 1
    # Margins from none (the digit touches the picture's edge) to generous.
    margin = 0 if rng.random() < 0.2 else int(side * rng.uniform(0.05, 0.4))
    padded = np.pad(ink, margin + side)
    top, left, bottom, right = (v + margin + side for v in (top, left, bottom, right))
    crop = padded[top - margin : bottom + margin + 1, left - margin : right + margin + 1]
    picture = Image.fromarray(crop)
    # Ink spread and blur of the paper and the optics.
    if rng.random() < 0.4:
        picture = picture.filter(ImageFilter.MaxFilter(3))
    picture = picture.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 2.5) * side / 180)))
    # Low resolution: a small photo, a fax, a thumbnail.
    longer = int(rng.integers(20, 120))
    scale = longer / max(picture.size)
    if scale < 1.0:
        small = (max(8, round(picture.width * scale)), max(8, round(picture.height * scale)))
        picture = picture.resize(small, Image.Resampling.BILINEAR)
    coverage = np.asarray(picture, dtype=np.float32) / 255.0
    paper = rng.uniform(150.0, 250.0)
    ink_level = rng.uniform(0.0, min(110.0, paper - 60.0))
    grey = paper - coverage * (paper - ink_level)
    # Uneven light and sensor noise.
    rows, cols = np.indices(grey.shape, dtype=np.float32)
    gradient = rng.uniform(-18, 18) * (rows / grey.shape[0] - 0.5) + rng.uniform(-18, 18) * (
        cols / grey.shape[1] - 0.5
    )
    grey = grey + gradient + rng.normal(0.0, rng.uniform(1.0, 10.0), grey.shape)
    picture = Image.fromarray(np.clip(np.round(grey), 0, 255).astype(np.uint8))
    if max(picture.size) < 8 or min(picture.size) < 8:
        picture = picture.resize((max(8, picture.width), max(8, picture.height)))
    out = io.BytesIO()
    if rng.random() < 0.8:
        picture.convert("RGB").save(out, format="JPEG", quality=int(rng.integers(25, 92)))
    else:
        picture.save(out, format="PNG")
    return out.getvalue()


def variants(
    strokes: Sequence[np.ndarray],
    label: int,
    count: int,
    seed: Sequence[int],
    *,
    style_share: float = 0.0,
    scan_share: float = 0.0,
    first: np.ndarray | None = None,
) -> np.ndarray:
    """``count`` model inputs (uint8, 28×28) of one drawing: ``first`` (or the
    strokes drawn as the page draws them) and then varied ones, some written in
    another style of the same digit (``training.allographs``), some as scans.

    Deterministic in ``seed``, and free of Django, so worker processes can build
    many drawings' variants in parallel.
    """
    from training import allographs  # no cycle: allographs imports nothing of ours

    rng = np.random.default_rng(list(seed))
    out = np.empty((count, 28, 28), np.uint8)
    out[0] = first if first is not None else render(strokes)
    styles = allographs.styles_of(label)
    for i in range(1, count):
        drawn = list(strokes)
        if styles and rng.random() < style_share:
            drawn = styles[int(rng.integers(len(styles)))].make(drawn, rng)
        varied, width = vary(drawn, rng)
        if rng.random() < scan_share:
            data = scan_like(canvas.render_ink(varied, stroke_width=width), rng)
            try:
                x = preprocessing.to_model_input(data)
            except preprocessing.PreprocessingError:  # a scan too faint to read: keep the pen
                x = preprocessing.ink_to_model_input(canvas.render_ink(varied, width))
            out[i] = np.round(x * 255.0).astype(np.uint8)
        else:
            out[i] = render(varied, width)
    return out


def variants_job(job: tuple) -> np.ndarray:
    """:func:`variants` for one drawing, as a picklable job for worker processes:
    ``(strokes, label, count, seed, style_share, scan_share, first)``. Strokes too
    odd to vary fall back to ``first``, the drawing's own picture, repeated."""
    strokes, label, count, seed, style_share, scan_share, first = job
    try:
        return variants(
            strokes, label, count, seed, style_share=style_share, scan_share=scan_share, first=first
        )
    except preprocessing.PreprocessingError:
        if first is None:
            raise
        return np.repeat(first[None], count, axis=0)
