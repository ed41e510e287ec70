"""Contact sheets of what training synthesises, for the README and for people to judge.

    python benchmarks/contact_sheets.py [--out docs]

``docs/styles.png``: every allograph family on real pen digits by held-out
writers (rows: styles; the first column is the writer's own digit; after the
grey bar, shapes from the family's held-out band: the disjoint style test).
``docs/variants.png``: stroke-space variants of pen digits (rows: digits).
``docs/scans.png``: scan-like uploads made from the same digits.
Each image is shown as the page would draw it (left of a pair) and as the
model sees it after ``classifier.preprocessing`` (right of a pair).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import django
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")
django.setup()

from PIL import Image  # noqa: E402

from classifier import canvas, preprocessing  # noqa: E402
from training import allographs  # noqa: E402
from training import strokes as pen  # noqa: E402
from training.sources import pendigits as pen_source  # noqa: E402

TILE = 64


def tile_pair(canvas_strokes, width=canvas.CANVAS_STROKE_WIDTH) -> np.ndarray:
    ink = canvas.render_ink(canvas_strokes, stroke_width=width)
    drawn = np.asarray(Image.fromarray(255 - ink).resize((TILE, TILE), Image.Resampling.BOX))
    model = preprocessing.ink_to_model_input(ink)
    seen = np.asarray(
        Image.fromarray(np.round(255 - model * 255).astype(np.uint8)).resize(
            (TILE, TILE), Image.Resampling.NEAREST
        )
    )
    return np.hstack([drawn, seen, np.full((TILE, 4), 255, np.uint8)])


def scan_pair(canvas_strokes, rng) -> np.ndarray:
    data = pen.scan_like(canvas.render_ink(canvas_strokes), rng)
    picture = Image.open(io.BytesIO(data)).convert("L")
    scale = TILE / max(picture.size)
    shown = picture.resize(
        (max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
        Image.Resampling.NEAREST,
    )
    board = Image.new("L", (TILE, TILE), 255)
    board.paste(shown, ((TILE - shown.width) // 2, (TILE - shown.height) // 2))
    model = preprocessing.to_model_input(data)
    seen = np.asarray(
        Image.fromarray(np.round(255 - model * 255).astype(np.uint8)).resize(
            (TILE, TILE), Image.Resampling.NEAREST
        )
    )
    return np.hstack([np.asarray(board), seen, np.full((TILE, 4), 255, np.uint8)])


def sheet(rows: list[list[np.ndarray]]) -> Image.Image:
    width = max(sum(t.shape[1] for t in row) for row in rows)
    lines = []
    for row in rows:
        line = np.hstack(row)
        line = np.pad(line, ((0, 4), (0, width - line.shape[1])), constant_values=255)
        lines.append(line)
    return Image.fromarray(np.vstack(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs")
    parser.add_argument("--columns", type=int, default=7)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    digits = [
        d
        for d in pen_source.load_pendigit_strokes()
        if d.writer in pen_source.PENDIGITS_TEST_WRITERS
    ]
    by_label = {label: [d for d in digits if d.label == label] for label in range(10)}

    rows = []
    for style in allographs.ALL_STYLES.values():
        picks = rng.choice(len(by_label[style.digit]), args.columns + 3, replace=False)
        row = []
        for n, i in enumerate(picks):
            base = canvas.fit_to_canvas(by_label[style.digit][i].strokes)
            if n == 0:
                row.append(tile_pair(base))
            if n < args.columns:
                row.append(tile_pair(style.make(base, rng)))
            elif style.disjoint:  # after a grey bar: the held-out band (disjoint test)
                if n == args.columns:
                    row.append(np.full((TILE, 6), 160, np.uint8))
                row.append(tile_pair(style.make(base, rng, held_out=True)))
        rows.append(row)
    sheet(rows).save(out / "styles.png")

    rows = []
    for label in range(10):
        base = canvas.fit_to_canvas(by_label[label][0].strokes)
        row = [tile_pair(base)]
        for _ in range(args.columns):
            varied, width = pen.vary(base, rng)
            row.append(tile_pair(varied, width))
        rows.append(row)
    sheet(rows).save(out / "variants.png")

    rows = [
        [
            scan_pair(canvas.fit_to_canvas(by_label[label][k].strokes), rng)
            for k in range(args.columns)
        ]
        for label in range(10)
    ]
    sheet(rows).save(out / "scans.png")
    print(f"wrote {out}/styles.png, {out}/variants.png, {out}/scans.png")


if __name__ == "__main__":
    main()
