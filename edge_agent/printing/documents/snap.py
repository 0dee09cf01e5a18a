"""Barcodes redrawn on whole dots. Pure (zxing-cpp reads from memory; nothing is written).

Scaling a page by 0.68 or 2.82 turns a bar of 3 pixels into 2.03 dots, which thresholding makes 2
here and 3 there: the classic unreadable PDF-on-thermal label. So every barcode zxing-cpp finds on
the page, rendered finer than the label, is measured there (its runs of bars and spaces along the
middle for a linear code, its module grid for a 2D one), and drawn again into the label's raster
with every module the same whole number of dots (the nearest, or the one below where the nearest
would widen it by more than 3 %), centred where it was. The redrawn
symbol is read back at once; one that does not read the same is put back as it was rendered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import zxingcpp

LINEAR = frozenset({"Code128", "Code39", "Code93", "Codabar", "ITF", "EAN8", "EAN13", "UPCA", "UPCE", "DataBar",
                    "DataBarExpanded", "DataBarLimited"})  # fmt: skip
SQUARE = frozenset({"QRCode", "DataMatrix", "Aztec", "MicroQRCode"})
GRID = SQUARE | {"PDF417"}
# grey level -> 1 (dark) or 0: a whole crop thresholded by one bytes.translate, since a getpixel
# a pixel (~2 us each, a 2D symbol is 10^5 of them) was most of a PDF label's render time
_DARK = bytes(1 if v < 128 else 0 for v in range(256))


def _read(image: Any) -> list[Any]:
    """zxing-cpp on a greyscale image, handed over as a plain 2D buffer: no numpy in between."""
    grey = image if image.mode == "L" else image.convert("L")
    return list(zxingcpp.read_barcodes(memoryview(grey.tobytes()).cast("B", (grey.height, grey.width))))


def _name(barcode: Any) -> str:
    return str(barcode.format.name).replace(" ", "")


def _bbox(barcode: Any) -> tuple[int, int, int, int]:
    p = barcode.position
    xs = [p.top_left.x, p.top_right.x, p.bottom_left.x, p.bottom_right.x]
    ys = [p.top_left.y, p.top_right.y, p.bottom_left.y, p.bottom_right.y]
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1


def _dark(hi: Any, box: tuple[int, int, int, int]) -> tuple[bytes, int, int]:
    """The pixels of `box` (cut to the image) row by row, 1 dark, 0 light; with its width and height."""
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(hi.width, box[2]), min(hi.height, box[3])
    if x1 <= x0 or y1 <= y0:
        return b"", 0, 0
    grey = hi if hi.mode == "L" else hi.convert("L")
    return grey.crop((x0, y0, x1, y1)).tobytes().translate(_DARK), x1 - x0, y1 - y0


def _runs(line: Sequence[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for dark in line:
        if out and out[-1][0] == dark:
            out[-1] = (dark, out[-1][1] + 1)
        else:
            out.append((dark, 1))
    return out


def _module(lengths: list[int]) -> float:
    """The module size in pixels from run lengths that are whole multiples of it (give or take a
    pixel of anti-aliasing): the narrow runs' mean, then refined on the whole span."""
    ordered = sorted(lengths)
    base = ordered[max(0, len(ordered) // 10)]
    narrow = [n for n in ordered if n <= base * 1.5]
    unit = sum(narrow) / len(narrow)
    for _ in range(2):
        unit = sum(lengths) / max(1, sum(max(1, round(n / unit)) for n in lengths))
    return unit


def _line(hi: Any, box: tuple[int, int, int, int], vertical: bool) -> bytes:
    x0, y0, x1, y1 = box
    if vertical:
        x = (x0 + x1) // 2
        return _dark(hi, (x, y0, x + 1, y1))[0]
    y = (y0 + y1) // 2
    return _dark(hi, (x0, y, x1, y + 1))[0]


def _dots(unit: float, scale: float) -> int:
    """Whole dots per module: the nearest, unless that makes the symbol more than 3 % wider than
    drawn (it might run into what is beside it); then the whole number below."""
    exact = unit * scale
    nearest = max(1, round(exact))
    return nearest if nearest <= exact * 1.03 else max(1, math.floor(exact))


def _redraw_linear(hi: Any, target: Any, barcode: Any, scale: float) -> None:
    vertical = barcode.orientation % 180 == 90
    box = _bbox(barcode)
    runs = _runs(_line(hi, box, vertical))
    while runs and not runs[0][0]:
        runs.pop(0)
    while runs and not runs[-1][0]:
        runs.pop()
    if len(runs) < 5:
        return
    unit = _module([n for _, n in runs])
    dots = _dots(unit, scale)
    counts = [(dark, max(1, round(n / unit))) for dark, n in runs]
    x0, y0, x1, y1 = (round(v * scale) for v in box)
    along0, along1 = (y0, y1) if vertical else (x0, x1)
    total = sum(n for _, n in counts) * dots
    start = along0 + (along1 - along0 - total) // 2
    draw = _drawer(target)
    draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=255)
    at = start
    for dark, n in counts:
        if dark:
            if vertical:
                draw.rectangle([x0, at, x1 - 1, at + n * dots - 1], fill=0)
            else:
                draw.rectangle([at, y0, at + n * dots - 1, y1 - 1], fill=0)
        at += n * dots


def _redraw_grid(hi: Any, target: Any, barcode: Any, scale: float) -> None:
    x0, y0, x1, y1 = _bbox(barcode)
    dark, width, height = _dark(hi, (x0, y0, x1, y1))
    if not width:
        return
    rows = [dark[y * width : (y + 1) * width] for y in range(height)]
    across = [n for row in rows[:: max(1, height // 12)] for _, n in _runs(row)]
    down = [n for x in range(0, width, max(1, width // 12)) for _, n in _runs(dark[x::width])]
    if len(across) < 4 or len(down) < 4:
        return
    ux, uy = _module(across), _module(down)
    square = _name(barcode) in SQUARE
    if square:
        ux = uy = (ux + uy) / 2
    nx, ny = max(1, round((x1 - x0) / ux)), max(1, round((y1 - y0) / uy))
    ux, uy = (x1 - x0) / nx, (y1 - y0) / ny
    mx, my = _dots(ux, scale), _dots(uy, scale)
    if square:
        mx = my = min(mx, my)
    tx0, ty0, tx1, ty1 = (round(v * scale) for v in (x0, y0, x1, y1))
    left, top = tx0 + (tx1 - tx0 - nx * mx) // 2, ty0 + (ty1 - ty0 - ny * my) // 2
    draw = _drawer(target)
    draw.rectangle([tx0, ty0, tx1 - 1, ty1 - 1], fill=255)
    for j in range(ny):
        row = rows[min(len(rows) - 1, int((j + 0.5) * uy))]
        for i in range(nx):
            if row[min(len(row) - 1, int((i + 0.5) * ux))]:
                draw.rectangle(
                    [left + i * mx, top + j * my, left + (i + 1) * mx - 1, top + (j + 1) * my - 1], fill=0
                )


def _drawer(image: Any) -> Any:
    from PIL import ImageDraw

    return ImageDraw.Draw(image)


def snap(hi: Any, target: Any, scale: float) -> int:
    """Redraw, in `target` (greyscale, `scale` of `hi`'s size), every barcode found in `hi` on
    whole dots; returns how many were redrawn and read back the same."""
    done = 0
    for barcode in _read(hi):
        name = _name(barcode)
        if name not in LINEAR and name not in GRID:
            continue  # MaxiCode's hexagons, and the rest: left as rendered
        if name in GRID and barcode.orientation % 90:
            continue
        x0, y0, x1, y1 = (round(v * scale) for v in _bbox(barcode))
        margin = max(8, (x1 - x0) // 4)
        region = (
            max(0, x0 - margin),
            max(0, y0 - margin),
            min(target.width, x1 + margin),
            min(target.height, y1 + margin),
        )
        before = target.crop(region)
        (_redraw_linear if name in LINEAR else _redraw_grid)(hi, target, barcode, scale)
        mono = target.crop(region).point(lambda v: 0 if v < 128 else 255)
        if any(b.text == barcode.text for b in _read(mono)):
            done += 1
        else:
            target.paste(before, region[:2])
    return done
