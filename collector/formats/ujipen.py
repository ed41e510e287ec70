"""UJI Pen Characters v2, digits only, as the JSON of ``../shared/datasets/ujipen``:
``{"rawData": {"0": [sample, ...], ...}}``, a sample a list of strokes, a stroke a
list of ``[x, y]`` screen points (y down, no timing).

The writer is not stored: sample ``i`` of every digit is writer ``i // 2`` and
session ``i % 2 + 1``, in the file's order, so readers must keep that order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from collector.formats import DatasetError, read_file
from collector.formats.unipen import PenDigit

SAMPLES_PER_WRITER = 2  # two sessions, one sample of each digit in each


def parse(data: bytes) -> list[PenDigit]:
    """The digits in the JSON, each with its writer (0-based) and session (1 or 2) as
    ``sample``; strokes as (n, 2) float32 screen points (y down)."""
    try:
        raw = json.loads(data)["rawData"]
        digits = []
        for label in sorted(raw, key=int):
            if not 0 <= int(label) <= 9:
                raise ValueError(f"label {label!r} is not a digit")
            for index, sample in enumerate(raw[label]):
                strokes = [np.asarray(s, dtype=np.float32).reshape(-1, 2) for s in sample if s]
                if strokes:
                    digits.append(
                        PenDigit(
                            label=int(label),
                            writer=index // SAMPLES_PER_WRITER,
                            sample=index % SAMPLES_PER_WRITER + 1,
                            strokes=strokes,
                        )
                    )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DatasetError(f"Not a UJI pen digits file: {exc}") from exc
    return digits


def read(path: Path) -> list[PenDigit]:
    """The file's digits, gzipped (``.gz``) or not."""
    return parse(read_file(path, "UJI pen digits file"))


def to_json(digits: list[PenDigit]) -> str:
    """Digits as the JSON :func:`parse` reads back (writers in order, two samples
    each): for tests, which write small files in the exact format."""
    raw: dict[str, list] = {str(d): [] for d in range(10)}
    for digit in sorted(digits, key=lambda d: (d.writer, d.sample)):
        raw[str(digit.label)].append([s.round().astype(int).tolist() for s in digit.strokes])
    return json.dumps({"rawData": raw})
