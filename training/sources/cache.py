"""The one cache of derived arrays under the data directory.

Rendering and preprocessing pen digits and their variants takes minutes, and a
run needs the same arrays as the last one: they are kept as ``.npz`` files
named by a hash of everything that shapes them (the source file's checksum, the
preprocessing and synthesis versions, the seed …), so a change to any of them
makes a new entry, never a stale hit.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable
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
