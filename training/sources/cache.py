"""The one cache of derived arrays under the data directory.

Rendering and preprocessing pen digits and their variants takes minutes, and a
run needs the same arrays as the last one: they are kept as ``.npz`` files
named by a hash of everything that shapes them (the source file's checksum, the
preprocessing and synthesis versions, the seed …), so a change to any of them
makes a new entry, never a stale hit.
"""

from __future__ import annotations

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
    written atomically (a temporary file renamed), so a killed run leaves no half file."""
    path = cache_file(name, key_parts)
    if enabled and path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    arrays = build()
    if enabled:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
    return arrays
