"""A folder of digit images, one sub-folder per digit: ``DIR/7/anything.png``.

The layout people make by hand from scans and photos. ``files`` walks it (sorted,
so a run's data is the same every time); what the images become is for the
caller (``training.sources`` preprocesses them, ``collector.imports`` stores
PNGs as drawings).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from collector.formats import DatasetError

# What classifier.preprocessing decodes.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})


def files(directory: Path, suffixes: frozenset[str] = IMAGE_SUFFIXES) -> Iterator[tuple[Path, str]]:
    """``(path, folder name)`` for every image under ``directory/<name>/``, sorted.
    The name is the label; callers refuse and report a folder that is not a digit
    (a typo is then named, not silently skipped)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"{directory} is not a folder.")
    for label_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        for path in sorted(label_dir.iterdir()):
            if path.is_file() and path.suffix.lower() in suffixes:
                yield path, label_dir.name


def digit(name: str) -> int | None:
    """The digit a sub-folder's name stands for, or None."""
    return int(name) if len(name) == 1 and name in "0123456789" else None
