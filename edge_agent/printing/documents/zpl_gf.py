"""A 1-bit raster as a ZPL label: `^GFA` with the data compressed as `:Z64:` (zlib, base64 and
the CRC-16 of the base64 text, as Zebra's ZPL manual gives it). Pure."""

from __future__ import annotations

import base64
import binascii
import zlib


def z64(data: bytes) -> str:
    """`:Z64:` + base64(zlib(data)) + `:` + CRC-16/CCITT (XMODEM) of that base64, four hex digits."""
    text = base64.b64encode(zlib.compress(data, 9)).decode("ascii")
    return f":Z64:{text}:{binascii.crc_hqx(text.encode('ascii'), 0):04X}"


def graphic_field(bitmap: bytes, bytes_per_row: int) -> str:
    """`^GFA,total,total,row,data^FS` for a bitmap whose rows are `bytes_per_row` bytes, MSB first,
    1 = black."""
    if bytes_per_row <= 0 or len(bitmap) % bytes_per_row:
        raise ValueError(f"a bitmap of {len(bitmap)} bytes is not rows of {bytes_per_row}")
    total = len(bitmap)
    return f"^GFA,{total},{total},{bytes_per_row},{z64(bitmap)}^FS"


def label(bitmap: bytes, bytes_per_row: int, copies: int = 1) -> bytes:
    """One label holding the bitmap at its top left; `^PQ` prints the copies, `^PW`/`^LL` size the label
    to the raster so a printer set to another label length does not cut it."""
    rows = len(bitmap) // bytes_per_row
    body = (
        f"^XA^PW{bytes_per_row * 8}^LL{rows}^LH0,0^FO0,0{graphic_field(bitmap, bytes_per_row)}"
        f"^PQ{copies},0,1,Y^XZ\n"
    )
    return body.encode("ascii")
