"""The one cache of derived arrays under the data directory.

Rendering and preprocessing pen digits and their variants takes minutes, and a
run needs the same arrays as the last one: they are kept as ``.npz`` files
named by a hash of everything that shapes them (the source file's checksum, the
preprocessing and synthesis versions, the seed …), so a change to any of them
makes a new entry, never a stale hit.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from django.conf import settings


def cache_file(name: str, key_parts: tuple) -> Path:
    key = hashlib.sha256(repr(key_parts).encode()).hexdigest()[:16]
    return Path(settings.DIGITS_DATA_DIR) / "cache" / f"{name}-{key}.npz"


def cached(
    name: str,
    key_parts: tuple,
    build: Callable[[], dict[str, np.ndarray]],
    *,
    enabled: bool = True,
) -> dict[str, np.ndarray]:
    """``build()``'s arrays, from the cache when an entry for ``key_parts`` exists;
    written atomically (a temporary file renamed), so a killed run leaves no half file.

    Built once, by whoever asks first: a builder holds a lock on the entry (an
    ``flock``, released by the kernel if the process dies), and another process
    asking meanwhile (a run started while the background worker warms the caches
    at start-up) waits for it and reads its result instead of rendering the same
    minutes again."""
    path = cache_file(name, key_parts)
    if not enabled:
        return build()
    if path.exists():
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another process builds it
        if path.exists():
            return _read(path)
        arrays = build()
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
    return arrays


def _read(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def item_file(family: str, key_parts: tuple, name: str) -> Path:
    """Where one item's array (one drawing's model inputs) lives, under
    ``DIGITS_ITEM_CACHE_DIR`` (one small file per drawing: a folder of its own, so
    it can sit on another disk at scale): a folder per
    ``family`` and ``key_parts`` (what shapes every item alike: the synthesis and
    preprocessing versions, the seed …), then ``name`` (what shapes this item: its
    content's hash …), fanned out by its first two characters."""
    key = hashlib.sha256(repr(key_parts).encode()).hexdigest()[:16]
    return Path(settings.DIGITS_ITEM_CACHE_DIR) / family / key / name[:2] / f"{name}.npy"


def read_item(path: Path) -> np.ndarray | None:
    """An item's array, or None when it is not there (or unreadable: rebuilt)."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None


def write_item(path: Path, array: np.ndarray) -> None:
    """Write an item atomically (a temporary file renamed): readers never see half
    of one, and two builders of the same item both leave a whole one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, array, allow_pickle=False)
    tmp.replace(path)


class Pack:
    """Many items' arrays in one file, read as a memory map: what a run reads.

    One small file a drawing (:func:`item_file`) is what the background worker
    writes as drawings arrive, but opening a million of them costs a run minutes,
    and holding every input in memory costs gigabytes. A pack keeps the inputs of
    every drawing a run has read, appended one fixed-size record after another
    (``items.u8``), and their names in the same order (``names.txt``, one a line):
    the next run finds each of its drawings' records by name and reads the whole as
    a memory map, so its loading reads only what is new and holds no input itself
    (the training stream reads its batches from the map).

    Appending happens under an ``flock`` held by one :meth:`writer` at a time
    (released by the kernel if the process dies). Records are written before their
    names, so a process that died mid-append leaves at most a tail that the next
    writer cuts off: a name always points at a whole record. Records are never
    rewritten; a drawing relabelled is a new name and a new record.
    """

    def __init__(self, family: str, key_parts: tuple, shape: tuple[int, ...]):
        key = hashlib.sha256(repr(key_parts).encode()).hexdigest()[:16]
        label = "x".join(str(n) for n in shape)
        self.folder = Path(settings.DIGITS_ITEM_CACHE_DIR) / family / key / f"pack-{label}"
        self.shape = shape
        self.record = int(np.prod(shape))
        self.data = self.folder / "items.u8"
        self.names = self.folder / "names.txt"

    def _known(self) -> list[str]:
        """The names of whole records, in order."""
        try:
            text = self.names.read_bytes()
        except FileNotFoundError:
            return []
        text = text[: text.rfind(b"\n") + 1]  # a half-written last line is no name
        names = text.decode().split("\n")[:-1]
        try:
            whole = self.data.stat().st_size // self.record
        except FileNotFoundError:
            whole = 0
        return names[:whole]

    def inputs(self, count: int) -> np.ndarray:
        """The first ``count`` records, ``(count, *shape)`` uint8, as a read-only
        memory map (pages are read when a batch touches them)."""
        if count == 0:
            return np.zeros((0, *self.shape), np.uint8)
        return np.memmap(self.data, np.uint8, "r", shape=(count, *self.shape))

    @contextlib.contextmanager
    def writer(self) -> Iterator[PackWriter]:
        """The pack, locked for this process: look items up, append the missing. A
        pack that cannot be opened (a full or read-only disk) is an empty one that
        takes nothing: the run keeps its inputs in memory, as without a pack."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            lock = open(self.folder / "lock", "a")  # noqa: SIM115 (closed below)
        except OSError as exc:
            yield PackWriter(self, [], failed=exc)
            return
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another process appends
            yield PackWriter(self, self._known())


class PackWriter:
    """A locked :class:`Pack`: its names, and appends after the last whole record."""

    def __init__(self, pack: Pack, known: list[str], failed: OSError | None = None):
        self.pack = pack
        self.index = {name: row for row, name in enumerate(known)}
        self.count = len(known)
        self.failed = failed
        self._repaired = False

    def rows(self, names: Sequence[str]) -> np.ndarray:
        """Each name's record, -1 where the pack has none."""
        return np.fromiter((self.index.get(n, -1) for n in names), np.int64, len(names))

    def add(self, names: Sequence[str], arrays: np.ndarray) -> np.ndarray | None:
        """Append ``arrays`` (one record each) under ``names``; their rows, or None
        once the disk refused a write (this writer appends no more: the caller keeps
        what is left in memory, and the next writer cuts off the partial tail)."""
        if self.failed is not None:
            return None
        pack = self.pack
        try:
            if not self._repaired:  # cut off what a process that died left half done
                named = sum(len(name.encode()) + 1 for name in self.index)
                for path, size in ((pack.data, self.count * pack.record), (pack.names, named)):
                    with open(path, "ab") as handle:
                        handle.truncate(size)
                self._repaired = True
            with open(pack.data, "ab") as handle:
                handle.write(np.ascontiguousarray(arrays, np.uint8).tobytes())
            with open(pack.names, "a") as handle:
                handle.write("".join(f"{name}\n" for name in names))
        except OSError as exc:
            self.failed = exc
            return None
        rows = np.arange(self.count, self.count + len(names), dtype=np.int64)
        self.index.update(zip(names, rows.tolist(), strict=True))
        self.count += len(names)
        return rows
