"""What a thermal printer would print, from the bytes it received: each `^GF` graphic of a ZPL
label and each ESC/POS `GS v 0` raster, as an image (black on white). For the printer simulator's
label library and for tests that read the barcodes back; pure."""

from __future__ import annotations

import base64
import binascii
import re
import struct
import zlib
from typing import Any

_GF = re.compile(rb"\^GF([ABC]),(\d+),(\d+),(\d+),")
_HEX_COUNTS = {ch: i for i, ch in enumerate("GHIJKLMNOPQRSTUVWXY", start=1)}
_HEX_COUNTS.update({ch: 20 * i for i, ch in enumerate("ghijklmnopqrstuvwxyz", start=1)})


def _ascii_rle(text: str, total: int, per_row: int) -> bytes:
    """ZPL's ASCII hex with its repeat counts (G-Y, g-z), `,` (rest of row white), `!` (black),
    `:` (repeat the previous row)."""
    out = bytearray()
    row = ""
    previous = ""
    count = 0
    digits = per_row * 2
    for ch in text:
        if ch in _HEX_COUNTS:
            count += _HEX_COUNTS[ch]
        elif ch in "0123456789ABCDEFabcdef":
            row += ch.upper() * (count or 1)
            count = 0
        elif ch in ",!":
            row += ("0" if ch == "," else "F") * (digits - len(row) % digits if len(row) % digits else digits)
        elif ch == ":":
            row += previous
        if len(row) >= digits:
            previous = row[:digits]
            out += bytes.fromhex(row[:digits])
            row = row[digits:]
    return bytes(out[:total])


def gf_bitmaps(zpl: bytes) -> list[tuple[bytes, int]]:
    """(bitmap, bytes per row) of every `^GFA` field, 1 = black; raises ValueError on a bad CRC."""
    out = []
    for m in _GF.finditer(zpl):
        kind, total, per_row = m[1], int(m[2]), int(m[4])
        end = zpl.find(b"^", m.end())
        data = zpl[m.end() : end if end >= 0 else len(zpl)].decode("ascii").strip()
        if kind != b"A":
            raise ValueError("only ^GFA is read here")
        if data.startswith((":Z64:", ":B64:")):
            body, _, crc = data[5:].rpartition(":")
            if f"{binascii.crc_hqx(body.encode('ascii'), 0):04X}" != crc.upper():
                raise ValueError(f"^GF CRC {crc} does not match its data")
            raw = base64.b64decode(body)
            bitmap = zlib.decompress(raw) if data.startswith(":Z64:") else raw
        else:
            bitmap = _ascii_rle(data, total, per_row)
        if len(bitmap) != total:
            raise ValueError(f"^GF says {total} bytes, its data has {len(bitmap)}")
        out.append((bitmap, per_row))
    return out


def escpos_bitmaps(data: bytes) -> list[tuple[bytes, int]]:
    """Each page (the `GS v 0` bands up to a cut, joined) as (bitmap, bytes per row), 1 = black."""
    pages: list[tuple[bytes, int]] = []
    current = bytearray()
    per_row = 0
    i = 0
    while i < len(data):
        if data[i : i + 3] == b"\x1dv0" and i + 8 <= len(data):
            x, y = struct.unpack("<HH", data[i + 4 : i + 8])
            if per_row and x != per_row:
                raise ValueError(f"a band {x} bytes wide after bands {per_row} wide")
            per_row = x
            current += data[i + 8 : i + 8 + x * y]
            i += 8 + x * y
        elif data[i : i + 2] == b"\x1dV":
            if current:
                pages.append((bytes(current), per_row))
            current, per_row = bytearray(), 0
            i += 2
        else:
            i += 1
    if current:
        pages.append((bytes(current), per_row))
    return pages


def to_image(bitmap: bytes, per_row: int) -> Any:
    """A PIL image, white paper and black dots."""
    from PIL import Image, ImageOps

    rows = len(bitmap) // per_row
    dots = Image.frombytes("1", (per_row * 8, rows), bitmap)  # 1 = black here, white in PIL
    return ImageOps.invert(dots.convert("L"))
