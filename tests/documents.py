"""Documents as carriers and offices send them, made here: PDFs whose barcodes are vector
rectangles (as carrier label generators draw them) and PNGs at a given dpi, each with the
barcodes it carries, so a test can read every one back from what a printer received."""

from __future__ import annotations

import io
from dataclasses import dataclass

import zxingcpp
from fpdf import FPDF
from PIL import Image, ImageDraw

from edge_agent.printing import render_pdf

MM = 72 / 25.4  # points per millimetre


@dataclass(frozen=True)
class Code:
    format: str
    """zxing-cpp's name: Code128, QRCode, DataMatrix, PDF417..."""
    text: str


def modules(code: Code) -> list[list[bool]]:
    """The symbol's modules, True = dark (one per module, no quiet zone)."""
    return render_pdf.modules(
        zxingcpp.create_barcode(code.text, getattr(zxingcpp.BarcodeFormat, code.format))
    )


def draw(pdf: FPDF, code: Code, x: float, y: float, module: float, height: float | None = None) -> None:
    """Vector bars or squares at (x, y) mm, `module` mm each (a linear code `height` mm tall)."""
    grid = modules(code)
    linear = len(grid) > 1 and all(row == grid[0] for row in grid)
    render_pdf.draw_modules(
        pdf, [grid[0]] if linear else grid, x, y, module, (height or 15.0) if linear else module
    )


def carrier_4x6(codes: tuple[Code, ...] | None = None) -> tuple[bytes, tuple[Code, ...]]:
    """A 4x6" carrier label: addresses in text, a GS1-128-style Code 128, a DataMatrix, a PDF417."""
    codes = codes or (Code("Code128", "1Z999AA10123456784"), Code("DataMatrix", "RET1 R100234 SO-88121"),
                      Code("PDF417", "RETURN R100234 TO HEL1 DOCK 7"))  # fmt: skip
    pdf = FPDF(unit="mm", format=(101.6, 152.4))
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("helvetica", size=9)
    pdf.text(5, 8, "FROM: Customer 42, Mannerheimintie 1, Helsinki")
    pdf.text(5, 14, "TO: Returns HEL1, Varastotie 5, 01510 Vantaa")
    draw(pdf, codes[0], 8, 25, 0.375, 22)
    draw(pdf, codes[1], 8, 60, 0.75)
    draw(pdf, codes[2], 8, 100, 0.375)
    pdf.line(5, 55, 96, 55)
    return bytes(pdf.output()), codes


def a4_with_label() -> tuple[bytes, tuple[Code, ...]]:
    """An A4 page from a return portal: instructions, and a label in its top half."""
    codes = (Code("Code128", "RR123456785SE"), Code("QRCode", "https://returns.example/R100234"))
    pdf = FPDF(unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.text(20, 20, "Your return label. Print it, cut it out and stick it on the parcel.")
    pdf.rect(20, 30, 101.6, 152.4)
    draw(pdf, codes[0], 30, 50, 0.5, 25)
    draw(pdf, codes[1], 30, 100, 1.0)
    return bytes(pdf.output()), codes


def a4_packing_slip() -> tuple[bytes, tuple[Code, ...]]:
    """An A4 packing slip filling the page: an item's EAN-13 and the order's Code 128 at the
    GS1 nominal 0.33 mm module, a DataMatrix at 1 mm. Fitted to a 4x6 label (or 72 mm of paper) the page
    shrinks to a half or a third, so a module is 1-2 dots: a thin bar there rasterises 2 pixels
    wide in one place and 4 in another, the case where bar widths alone misjudge the module."""
    codes = (Code("EAN13", "4006381333931"), Code("Code128", "SO-88121-R100234"),
             Code("DataMatrix", "RET1 R100234"))  # fmt: skip
    pdf = FPDF(unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.text(6, 12, "Packing slip SO-88121: 1 x Villasukat, 1 x Kumisaappaat 42")
    draw(pdf, codes[0], 6, 30, 0.33, 15)
    draw(pdf, codes[1], 6, 60, 0.33, 15)
    draw(pdf, codes[2], 6, 90, 1.0)
    pdf.text(6, 280, "Returns HEL1, Varastotie 5, 01510 Vantaa")
    return bytes(pdf.output()), codes


def two_pages() -> tuple[bytes, tuple[Code, ...]]:
    """A label and a packing note with its own barcode, one page each."""
    codes = (Code("Code128", "SO-88121"), Code("QRCode", "PACK R100234"))
    pdf = FPDF(unit="mm", format=(101.6, 152.4))
    pdf.set_auto_page_break(False)
    for code in codes:
        pdf.add_page()
        draw(pdf, code, 10, 20, 0.5 if code.format == "Code128" else 1.0, 25)
    return bytes(pdf.output()), codes


def png_label(dpi: int, landscape: bool = False) -> tuple[bytes, tuple[Code, ...]]:
    """A 4x6 label as a carrier's API returns it as PNG, at `dpi` (6x4 when `landscape`)."""
    codes = (Code("Code128", "JJD000390007823456"), Code("DataMatrix", f"LABEL AT {dpi} DPI"))
    w, h = round(4 * dpi), round(6 * dpi)
    if landscape:
        w, h = h, w
    image = Image.new("L", (w, h), 255)
    pen = ImageDraw.Draw(image)
    dots = dpi / 203  # a module of 2 (Code 128) or 6 (DataMatrix) dots of a 203 dpi printer
    for code, (x0, y0, module, height) in zip(codes, ((40, 60, 2, 160), (40, 330, 6, 0)), strict=True):
        grid = modules(code)
        linear = all(row == grid[0] for row in grid)
        m = round(module * dots)
        for r, row in enumerate([grid[0]] if linear else grid):
            for c, dark in enumerate(row):
                if dark:
                    top = round(y0 * dots) + r * m
                    pen.rectangle([round(x0 * dots) + c * m, top, round(x0 * dots) + (c + 1) * m - 1,
                                   top + (round(height * dots) if linear else m) - 1], fill=0)  # fmt: skip
    buf = io.BytesIO()
    image.save(buf, "PNG", dpi=(dpi, dpi))
    return buf.getvalue(), codes


def read_codes(image: Image.Image) -> set[tuple[str, str]]:
    """(format, text) of every barcode zxing-cpp finds."""
    return {(b.format.name, b.text) for b in zxingcpp.read_barcodes(image)}
