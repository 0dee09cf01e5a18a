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


def _ideal_runs(barcode: Any) -> list[int] | None:
    """The symbol's bars and spaces in modules, as zxing-cpp encodes what it read; None where it
    cannot. A thin bar at 2-3 pixels a module measures 2 here and 4 there, and runs alone can
    then give a module a third too small (an EAN-13 on a shrunk A4 page did); the symbology
    knows the widths. Used only where it has as many runs as measured, each within 3/4 of a
    module of it (an encoder choosing other code sets draws another symbol)."""
    try:
        made = zxingcpp.create_barcode(barcode.text, barcode.format)
        view = memoryview(made.to_image(scale=1, add_quiet_zones=False))  # type: ignore[arg-type]
    except (ValueError, RuntimeError, TypeError):
        return None
    height, width = view.shape or (0, 0)
    if not width:
        return None
    middle = view.tobytes()[(height // 2) * width : (height // 2 + 1) * width].translate(_DARK)
    return [n for _, n in _runs(middle)]


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


def _bars_across(hi: Any, box: tuple[int, int, int, int], vertical: bool) -> tuple[int, int, int, int]:
    """How far a linear symbol's bars reach across its reading line, in `hi`'s pixels: (from, to)
    of the bars, and (from, to) of what is to be cleared. zxing-cpp's box holds the lines it read,
    which can stop a pixel or two short of the bars' ends (left in the label, they print as a
    dotted line), and an EAN's guard bars reach below the rest. A line is a bar line while it is
    the middle line give or take a tenth of its pixels; beyond that, a line whose dark pixels
    all lie on the middle line's bars (guard bars, an anti-aliased end) is cleared too."""
    x0, y0, x1, y1 = box
    a0, a1, limit = (x0, x1, hi.width) if vertical else (y0, y1, hi.height)
    reach = (a1 - a0) // 2 + 8
    lo, up = max(0, a0 - reach), min(limit, a1 + reach)
    dark, width, height = _dark(hi, (lo, y0, up, y1) if vertical else (x0, lo, x1, up))
    count = width if vertical else height
    if not count:
        return a0, a1, a0, a1

    def line(i: int) -> int:  # one byte a pixel, 0 or 1: a line's pixels as one int's bits
        return int.from_bytes(dark[i::width] if vertical else dark[i * width : (i + 1) * width], "big")

    middle_at = min(count - 1, max(0, (a0 + a1) // 2 - lo))
    middle, length = line(middle_at), (height if vertical else width)

    def bars(i: int) -> bool:
        return (line(i) ^ middle).bit_count() <= length // 10

    def tail(i: int) -> bool:
        v = line(i)
        return v != 0 and (v & ~middle).bit_count() <= max(1, length // 50)

    b0 = b1 = middle_at
    while b0 > 0 and bars(b0 - 1):
        b0 -= 1
    while b1 < count - 1 and bars(b1 + 1):
        b1 += 1
    c0, c1 = b0, b1
    while c0 > 0 and tail(c0 - 1):
        c0 -= 1
    while c1 < count - 1 and tail(c1 + 1):
        c1 += 1
    return lo + b0, lo + b1 + 1, min(a0, lo + c0), max(a1, lo + c1 + 1)


def _span(v0: float, v1: float, scale: float) -> tuple[int, int]:
    """`hi`'s [v0, v1) in the target's pixels, every pixel it touches."""
    return math.floor(v0 * scale), math.ceil(v1 * scale)


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
    measured = [n for _, n in runs]
    ideal = _ideal_runs(barcode)
    unit = sum(measured) / sum(ideal) if ideal and len(ideal) == len(measured) else 0.0
    if unit and all(abs(n / unit - k) <= 0.75 for n, k in zip(measured, ideal or [], strict=True)):
        counts = [(dark, k) for (dark, _), k in zip(runs, ideal or [], strict=True)]
    else:
        unit = _module(measured)
        counts = [(dark, max(1, round(n / unit))) for dark, n in runs]
    dots = _dots(unit, scale)
    bars_from, bars_to, clear_from, clear_to = _bars_across(hi, box, vertical)
    along0, along1 = _span(*((box[1], box[3]) if vertical else (box[0], box[2])), scale)
    b0, b1 = _span(bars_from, bars_to, scale)
    c0, c1 = _span(clear_from, clear_to, scale)
    total = sum(n for _, n in counts) * dots
    start = along0 + (along1 - along0 - total) // 2
    draw = _drawer(target)
    if vertical:
        draw.rectangle([c0, along0, c1 - 1, along1 - 1], fill=255)
    else:
        draw.rectangle([along0, c0, along1 - 1, c1 - 1], fill=255)
    at = start
    for dark, n in counts:
        if dark:
            if vertical:
                draw.rectangle([b0, at, b1 - 1, at + n * dots - 1], fill=0)
            else:
                draw.rectangle([at, b0, at + n * dots - 1, b1 - 1], fill=0)
        at += n * dots


def _grid_size(barcode: Any) -> tuple[int, int] | None:
    """(columns, rows) of modules of a symbol whose size zxing-cpp reports with it: QR's and
    Micro QR's version, Data Matrix's `RxC`. Counting runs cannot tell a module from an
    anti-aliased edge pixel when a symbol has few rows (a Data Matrix of 8 x 32 did not)."""
    extra = barcode.extra if isinstance(barcode.extra, dict) else {}
    version, name = str(extra.get("Version", "")), _name(barcode)
    if name == "QRCode" and version.isdigit():
        return (17 + 4 * int(version),) * 2
    if name == "MicroQRCode" and version[1:].isdigit():
        return (9 + 2 * int(version[1:]),) * 2
    rows, _, columns = version.partition("x")
    if name == "DataMatrix" and rows.isdigit() and columns.isdigit():
        size = (int(columns), int(rows))
        return (size[1], size[0]) if barcode.orientation % 180 == 90 else size
    return None


def _free_around(target: Any, box: tuple[int, int, int, int], width: int, height: int, quiet: int) -> bool:
    """Whether a symbol `width` x `height` centred on `box`, and `quiet` pixels around it, would
    cover nothing but white outside `box`. A 2D symbol then takes the nearest whole dots even
    where that is over 3 % larger than drawn: at 2 dots a module zxing-cpp misses a small
    Data Matrix in some places on a page, at 3 it finds it everywhere."""
    x0, y0, x1, y1 = box
    left, top = x0 + (x1 - x0 - width) // 2 - quiet, y0 + (y1 - y0 - height) // 2 - quiet
    right, bottom = left + width + 2 * quiet, top + height + 2 * quiet
    if left < 0 or top < 0 or right > target.width or bottom > target.height:
        return False
    around = target.crop((left, top, right, bottom))
    around.paste(255, (x0 - left, y0 - top, x1 - left, y1 - top))
    return bool(around.getextrema()[0] >= 128)


def _redraw_grid(hi: Any, target: Any, barcode: Any, scale: float) -> None:
    x0, y0, x1, y1 = _bbox(barcode)
    dark, width, height = _dark(hi, (x0, y0, x1, y1))
    if not width:
        return
    rows = [dark[y * width : (y + 1) * width] for y in range(height)]
    square = _name(barcode) in SQUARE
    size = _grid_size(barcode)
    if size is not None and 0.8 <= (width / size[0]) / (height / size[1]) <= 1.25:
        nx, ny = size
    else:
        across = [n for row in rows[:: max(1, height // 12)] for _, n in _runs(row)]
        down = [n for x in range(0, width, max(1, width // 12)) for _, n in _runs(dark[x::width])]
        if len(across) < 4 or len(down) < 4:
            return
        ux, uy = _module(across), _module(down)
        if square:
            ux = uy = (ux + uy) / 2
        nx, ny = max(1, round((x1 - x0) / ux)), max(1, round((y1 - y0) / uy))
    ux, uy = (x1 - x0) / nx, (y1 - y0) / ny
    mx, my = _dots(ux, scale), _dots(uy, scale)
    if square:
        mx = my = min(mx, my)
    tx0, tx1 = _span(x0, x1, scale)
    ty0, ty1 = _span(y0, y1, scale)
    up = max(mx, round(ux * scale)), max(my, round(uy * scale))
    if up != (mx, my) and _free_around(target, (tx0, ty0, tx1, ty1), nx * up[0], ny * up[1], max(up)):
        mx, my = up
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
        # room for what a redraw may touch beyond the box: a symbol a little wider, guard bars
        margin = max(8, (x1 - x0) // 4, (y1 - y0) // 2 + 10)
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
