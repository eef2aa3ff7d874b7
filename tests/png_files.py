"""Writes PNG files byte by byte, for depths and sizes that Pillow cannot or should not make."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour types and the samples per pixel each stores.
GREY, RGB, GREY_ALPHA, RGB_ALPHA = 0, 2, 4, 6
CHANNELS = {GREY: 1, RGB: 3, GREY_ALPHA: 2, RGB_ALPHA: 4}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path: str | os.PathLike, width: int, height: int, bit_depth: int,
              color_type: int, rows: Iterable[bytes]) -> None:
    """Writes a non-interlaced PNG whose scanlines are `rows`, each compressed as it comes.

    Each row holds the row's packed samples, big-endian for 16-bit depths, without the filter
    byte. Compressing row by row keeps memory to one row, so a PNG of 12000x12000 pixels costs
    a few kilobytes on disk and in memory.
    """
    compressor = zlib.compressobj(9)
    idat = bytearray()
    for row in rows:
        idat += compressor.compress(b"\0" + row)  # Filter type 0: the row as it is.
    idat += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    with open(path, "wb") as file:
        file.write(SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", bytes(idat))
                   + _chunk(b"IEND", b""))


def write_blank_png(path: str | os.PathLike, width: int, height: int) -> None:
    """Writes an all-black 1-bit greyscale PNG, the cheapest to build at any size."""
    row = bytes((width + 7) // 8)
    write_png(path, width, height, 1, GREY, (row for _ in range(height)))
