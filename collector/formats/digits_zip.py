"""Digits' own dataset archive, lossless: every drawing's original PNG as
``drawings/<sha256>.png``, ``manifest.csv`` (one row a drawing: its file, hash,
label, split, review status, source, writer and when it arrived) and
``strokes.ndjson`` (``{"sha256", "strokes"}`` for each drawing that has them).

``export_dataset --format zip`` writes it and ``import_drawings zip`` reads it
back with the same labels, splits, statuses and strokes.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from collector.formats import DatasetError

MANIFEST_FILE = "manifest.csv"
STROKES_FILE = "strokes.ndjson"
MANIFEST_FIELDS = ("file", "sha256", "label", "split", "status", "source", "writer", "created")


@dataclass
class Entry:
    """One drawing in the archive (fields as text, as the manifest holds them)."""

    png: bytes
    sha256: str
    label: object
    split: str
    status: str
    source: str
    writer: str = ""
    created: str = ""
    strokes: object = None  # as the page records them, or None


def write(out, entries: Iterable[Entry]) -> int:
    """The archive of ``entries`` to a binary file; how many it holds."""
    count = 0
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(MANIFEST_FIELDS)
    strokes = io.StringIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for entry in entries:
            name = f"drawings/{entry.sha256}.png"
            archive.writestr(name, entry.png)  # PNGs are compressed already
            if entry.strokes:
                line = {"sha256": entry.sha256, "strokes": entry.strokes}
                strokes.write(json.dumps(line, separators=(",", ":")) + "\n")
            writer.writerow([name, entry.sha256, entry.label, entry.split, entry.status,
                             entry.source, entry.writer, entry.created])  # fmt: skip
            count += 1
        archive.writestr(MANIFEST_FILE, manifest.getvalue())
        archive.writestr(STROKES_FILE, strokes.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    return count


def read(path: Path) -> Iterator[Entry]:
    """The archive's drawings, in the manifest's order (archives written before
    strokes were kept have no ``strokes.ndjson``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            strokes = {}
            if STROKES_FILE in archive.namelist():
                for line in io.TextIOWrapper(archive.open(STROKES_FILE), "utf-8"):
                    if line.strip():
                        entry = json.loads(line)
                        strokes[entry["sha256"]] = entry["strokes"]
            manifest = csv.DictReader(io.TextIOWrapper(archive.open(MANIFEST_FILE), "utf-8"))
            for row in manifest:
                yield Entry(
                    png=archive.read(row["file"]),
                    sha256=row["sha256"],
                    label=row["label"],
                    split=row["split"],
                    status=row["status"],
                    source=row["source"],
                    writer=row.get("writer") or "",
                    created=row.get("created") or "",
                    strokes=strokes.get(row["sha256"]),
                )
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        raise DatasetError(f"{path} is not a Digits dataset archive: {exc}") from exc
