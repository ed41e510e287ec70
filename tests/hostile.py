"""Hostile inputs, made here in their exact formats: cheap to send, costly to read
unless refused from their structure first (the public-safety tests and
``benchmarks/hostile_load.py`` use them)."""

from __future__ import annotations

import io
import json
import struct
import zlib

from PIL import Image


def _chunk(kind: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def many_chunk_png(chunks: int, side: int = 256) -> bytes:
    """A valid PNG with ``chunks`` empty ancillary chunks before its pixels."""
    out = io.BytesIO()
    Image.new("L", (side, side), 255).save(out, "PNG")
    png = out.getvalue()
    ihdr_end = 8 + 12 + 13
    return png[:ihdr_end] + _chunk(b"zzZz") * chunks + png[ihdr_end:]


def many_scan_jpeg(scans: int, side: int = 1024) -> bytes:
    """A progressive JPEG whose last scan is repeated ``scans`` times, empty: every
    repeat is a pass a decoder makes over the whole image."""
    out = io.BytesIO()
    Image.new("L", (side, side), 200).save(out, "JPEG", progressive=True, quality=30)
    jpeg = out.getvalue()
    last = jpeg.rindex(b"\xff\xda")
    header_length = struct.unpack(">H", jpeg[last + 2 : last + 4])[0]
    header = jpeg[last : last + 2 + header_length]
    end = jpeg.rindex(b"\xff\xd9")
    return jpeg[:end] + header * scans + jpeg[end:]


def many_arrays_json(arrays: int, image: str = "") -> bytes:
    """A JSON body of ``arrays`` empty arrays under ``strokes``."""
    head = json.dumps({"image": image, "label": 1})[:-1]
    return (head + ', "strokes": [' + ",".join(["[]"] * arrays) + "]}").encode()
