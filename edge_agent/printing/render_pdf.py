"""A filled template as a PDF page for an office printer (A4 or Letter), drawn with fpdf2 in
vector: text in Helvetica, barcodes as rectangles of zxing-cpp's modules at the template's module
size, so the page holds the same label, at the same size in millimetres, as a thermal printer
prints. The label sits at the top left inside a 15 mm margin; a label larger than the page is
scaled down to fit, never stretched."""

from __future__ import annotations

import zxingcpp
from fpdf import FPDF

from edge_agent.printing.render_png import FORMATS, TEMPLATES_DIR
from edge_agent.printing.templates import (
    BarcodeElement,
    BoxElement,
    Filled,
    ImageElement,
    LineElement,
    TextElement,
)

PAPER_MM = {"a4": (210.0, 297.0), "letter": (215.9, 279.4)}
MARGIN_MM = 15.0
PT_PER_MM = 72 / 25.4


def modules(code: zxingcpp.Barcode) -> list[list[bool]]:
    """A symbol's modules, True = dark: one per module, no quiet zone."""
    view = memoryview(code.to_image(scale=1, add_quiet_zones=False))  # type: ignore[arg-type]
    height, width = view.shape or (0, 0)
    flat = view.tobytes()
    return [[flat[y * width + x] < 128 for x in range(width)] for y in range(height)]


def draw_modules(pdf: FPDF, rows: list[list[bool]], x: float, y: float, module: float, row_h: float) -> None:
    """Rows of modules as filled rectangles at (x, y), `module` wide and `row_h` high each, one
    rectangle a run of dark modules."""
    for r, row in enumerate(rows):
        c = 0
        while c < len(row):  # one rectangle a run of dark modules
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            pdf.rect(x + start * module, y + r * row_h, (c - start) * module, row_h, style="F")


def _barcode(pdf: FPDF, e: BarcodeElement, x: float, y: float, k: float) -> None:
    options = {"gs1": True} if e.type == "gs1_128" else {}
    grid = modules(zxingcpp.create_barcode(e.data, FORMATS[e.type], **options))
    linear = e.type in ("code128", "gs1_128")
    draw_modules(
        pdf, grid[:1] if linear else grid, x, y, e.module * k, e.height * k if linear else e.module * k
    )


def render_pdf(labels: list[Filled], paper: str = "a4") -> bytes:
    """One page a label, in order."""
    width, height = PAPER_MM[paper]
    pdf = FPDF(unit="mm", format=(width, height))
    pdf.set_auto_page_break(False)
    pdf.set_creator("dock edge agent")
    for label in labels:
        t = label.template
        k = min(1.0, (width - 2 * MARGIN_MM) / t.width_mm, (height - 2 * MARGIN_MM) / t.height_mm)
        pdf.add_page()
        for e in label.elements:
            x, y = MARGIN_MM + e.x * k, MARGIN_MM + e.y * k
            if isinstance(e, TextElement):
                pdf.set_font("helvetica", "B" if e.bold else "", e.size * k * PT_PER_MM)
                # fpdf2 places text by its baseline; the template gives the top of the characters
                pdf.text(x, y + e.size * k * 0.8, e.text.encode("latin-1", "replace").decode("latin-1"))
            elif isinstance(e, BarcodeElement):
                _barcode(pdf, e, x, y, k)
            elif isinstance(e, BoxElement):
                pdf.set_line_width(e.thickness * k)
                pdf.rect(x, y, e.w * k, e.h * k)
            elif isinstance(e, LineElement):
                pdf.set_line_width(e.thickness * k)
                pdf.line(x, y, x, y + e.length * k) if e.vertical else pdf.line(x, y, x + e.length * k, y)
            elif isinstance(e, ImageElement):
                path = e.path if e.path.startswith("/") else str(TEMPLATES_DIR / e.path)
                pdf.image(path, x, y, w=e.w * k)
    return bytes(pdf.output())
