"""Importing drawings: UNIPEN pen strokes, folders of PNGs, and our own zip export.

Every import goes through ``dataset.add_drawing``, so it is idempotent (the
content hash dedupes) and obeys the same rules as a contribution.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from classifier import canvas, preprocessing
from collector import dataset
from collector.formats import unipen


@dataclass
class ImportSummary:
    added: int = 0
    skipped: int = 0  # already in the dataset
    refused: Counter = field(default_factory=Counter)  # reason → count

    def line(self) -> str:
        refused = sum(self.refused.values())
        reasons = "; ".join(f"{n}× {reason}" for reason, n in self.refused.most_common())
        return f"added={self.added} skipped={self.skipped} refused={refused}" + (
            f" ({reasons})" if reasons else ""
        )


@dataclass
class Item:
    data: bytes | Callable[[], bytes]
    label: object
    source: str
    writer: str = ""
    split: str | None = None
    status: str | None = None


def pendigits_items(path: Path) -> Iterator[Item]:
    """A UNIPEN file's digits (gzipped or not), each drawn as the canvas draws it."""
    for digit in unipen.read(path):
        yield Item(
            data=lambda digit=digit: canvas.render_strokes(digit.strokes),
            label=digit.label,
            source="import:pendigits",
            writer=str(digit.writer),
        )


def folder_items(directory: Path) -> Iterator[Item]:
    """PNG files in one sub-folder per label: ``DIR/7/anything.png``."""
    for label_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        for png in sorted(label_dir.glob("*.png")):
            yield Item(data=png.read_bytes, label=label_dir.name, source="import:folder")


def zip_items(path: Path) -> Iterator[Item]:
    """Our own ``export_dataset --format zip``: labels, splits and statuses kept."""
    with zipfile.ZipFile(path) as archive:
        manifest = csv.DictReader(io.TextIOWrapper(archive.open("manifest.csv"), "utf-8"))
        for row in manifest:
            yield Item(
                data=archive.read(row["file"]),
                label=row["label"],
                source=row["source"],
                writer=row.get("writer", ""),
                split=row["split"],
                status=row["status"],
            )


def run_import(items: Iterator[Item], *, status: str | None, progress=None) -> ImportSummary:
    """Add each item; an item's own status (from a zip manifest) wins over ``status``."""
    summary = ImportSummary()
    for item in items:
        try:
            data = item.data() if callable(item.data) else item.data
            _, created = dataset.add_drawing(
                data,
                item.label,
                source=item.source,
                writer=item.writer,
                split=item.split,
                status=item.status or status,
            )
        except (dataset.InvalidDrawing, preprocessing.PreprocessingError) as exc:
            summary.refused[str(exc)] += 1
        else:
            if created:
                summary.added += 1
            else:
                summary.skipped += 1
        if progress is not None:
            progress()
    return summary
