"""UNIPEN pen strokes (the UCI "pendigits" file): ``.SEGMENT`` starts a digit,
``.COMMENT`` names its writer and sample, ``.PEN_DOWN``…``.PEN_UP`` is a stroke
of tablet points (y up)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from collector.formats import DatasetError, read_file

_SEGMENT = re.compile(r'\.SEGMENT\s+DIGIT\s+[\d-]+\s+\S+\s+"(\d)"')


@dataclass
class PenDigit:
    label: int
    writer: int
    sample: int
    strokes: list[np.ndarray] = field(default_factory=list)  # each (n, 2) tablet x, y


def parse(text: str) -> list[PenDigit]:
    """The digits in a UNIPEN text (digits without strokes are left out)."""
    digits: list[PenDigit] = []
    current: PenDigit | None = None
    stroke: list[tuple[int, int]] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith(".SEGMENT"):
            match = _SEGMENT.match(line)
            if match is None:
                raise DatasetError(f"Unreadable segment line: {line!r}")
            current = PenDigit(label=int(match.group(1)), writer=-1, sample=-1)
            digits.append(current)
        elif line.startswith(".COMMENT") and current is not None:
            parts = line.split()
            current.writer, current.sample = int(parts[2]), int(parts[3])
        elif line.startswith(".PEN_DOWN"):
            stroke = []
        elif line.startswith(".PEN_UP"):
            if current is not None and stroke:
                current.strokes.append(np.asarray(stroke, dtype=np.float32))
            stroke = None
        elif stroke is not None and not line.startswith("."):
            x, y = line.split()[:2]
            stroke.append((int(x), int(y)))
    return [d for d in digits if d.strokes]


def read(path: Path) -> list[PenDigit]:
    """A UNIPEN file's digits, gzipped (``.gz``) or not."""
    data = read_file(path, "Pen-digits file")
    try:
        return parse(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError, IndexError) as exc:
        raise DatasetError(f"{path} is not a UNIPEN digits file: {exc}") from exc


def to_text(digits: list[PenDigit]) -> str:
    """Digits as UNIPEN text that :func:`parse` reads back (integer tablet points)."""
    lines = []
    for index, digit in enumerate(digits):
        lines.append(f'.SEGMENT DIGIT {index} ? "{digit.label}"')
        lines.append(f".COMMENT {digit.label} {digit.writer} {digit.sample}")
        for stroke in digit.strokes:
            lines.append(".PEN_DOWN")
            lines.extend(f"{x:.0f} {y:.0f}" for x, y in stroke)
            lines.append(".PEN_UP")
    return "\n".join(lines) + "\n"
