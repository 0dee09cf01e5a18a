"""A 1-bit raster as ESC/POS: `GS v 0` raster bit images in bands, then a partial cut. Pure.

A band is at most `BAND_ROWS` rows: printers buffer a raster image whole before printing it, and
an 80 mm printer's buffer holds a few hundred rows of 576 dots, not a page."""

from __future__ import annotations

import struct

BAND_ROWS = 256
INIT = b"\x1b@"
CUT = b"\x1dV\x42\x00"  # feed to the cutter, then a partial cut


def raster(bitmap: bytes, bytes_per_row: int) -> bytes:
    """`GS v 0 m xL xH yL yH d...` per band of rows (m = 0: normal size), rows MSB first, 1 = black."""
    if bytes_per_row <= 0 or len(bitmap) % bytes_per_row:
        raise ValueError(f"a bitmap of {len(bitmap)} bytes is not rows of {bytes_per_row}")
    rows = len(bitmap) // bytes_per_row
    out = bytearray()
    for top in range(0, rows, BAND_ROWS):
        n = min(BAND_ROWS, rows - top)
        out += b"\x1dv0\x00" + struct.pack("<HH", bytes_per_row, n)
        out += bitmap[top * bytes_per_row : (top + n) * bytes_per_row]
    return bytes(out)


def page(bitmap: bytes, bytes_per_row: int) -> bytes:
    """One page: initialise, the raster, cut."""
    return INIT + raster(bitmap, bytes_per_row) + CUT
