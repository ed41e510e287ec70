"""Drawings as newline-delimited JSON, one drawing per line, in Quick Draw's shape.

Each line: ``{"sha256", "label", "split", "status", "source", "writer",
"strokes"}`` where ``strokes`` is a list of strokes of ``[x, y, t]`` points
(canvas pixels, milliseconds). Reading also accepts Quick Draw's own
``"drawing"`` layout (per stroke ``[[x…], [y…]]`` or ``[[x…], [y…], [t…]]``)
and its ``"word"`` as the label, so such files import directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from collector.formats import DatasetError

FIELDS = ("sha256", "label", "split", "status", "source", "writer", "strokes")
MAX_LINE_BYTES = 1_000_000


def write(out: IO[str], records: Iterable[dict]) -> int:
    count = 0
    for record in records:
        out.write(json.dumps({k: record.get(k) for k in FIELDS}, separators=(",", ":")) + "\n")
        count += 1
    return count


def quickdraw_strokes(drawing: object) -> list:
    """Quick Draw's per-stroke ``[xs, ys(, ts)]`` as our ``[[x, y, t], …]`` strokes
    (untimed strokes get 10 ms between points)."""
    if not isinstance(drawing, list):
        raise DatasetError('"drawing" must be a list of strokes.')
    strokes, clock = [], 0
    for stroke in drawing:
        if not (isinstance(stroke, list) and len(stroke) in (2, 3)):
            raise DatasetError('each "drawing" stroke must be [xs, ys] or [xs, ys, ts].')
        xs, ys = stroke[0], stroke[1]
        ts = stroke[2] if len(stroke) == 3 else [clock + 10 * i for i in range(len(xs))]
        if not all(isinstance(v, list) for v in (xs, ys, ts)) or not len(xs) == len(ys) == len(ts):
            raise DatasetError("a stroke's xs, ys and ts must be lists of one length.")
        strokes.append([[x, y, t] for x, y, t in zip(xs, ys, ts, strict=True)])
        if ts:
            clock = ts[-1] + 10 if isinstance(ts[-1], int | float) else clock
    return strokes


def count(path: Path) -> int:
    """How many items :func:`read` yields (one per non-empty line), without parsing
    them: what an import's progress bar counts up to."""
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def read(path: Path) -> Iterator[tuple[int, dict | DatasetError]]:
    """``(line number, record)`` per non-empty line, or ``(line number, DatasetError)``
    for a line that is not a drawing, so one bad line does not stop an import."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if len(line) > MAX_LINE_BYTES:
                yield number, DatasetError(f"line {number} is over {MAX_LINE_BYTES} bytes")
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise DatasetError("not a JSON object")
                if record.get("strokes") is None and "drawing" in record:
                    record["strokes"] = quickdraw_strokes(record["drawing"])
                if record.get("label") is None and "word" in record:
                    record["label"] = record["word"]
                if record.get("strokes") is None:
                    raise DatasetError("no strokes")
            except (ValueError, DatasetError) as exc:
                yield number, DatasetError(f"line {number}: {exc}")
                continue
            yield number, record
