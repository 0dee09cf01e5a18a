"""A filled template to a PNG, to see a label without a printer (and to test it): Pillow draws
text and shapes, zxing-cpp makes the barcodes, at the template's resolution."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import zxingcpp
from PIL import Image, ImageDraw, ImageFont

from edge_agent.printing.templates import (
    BarcodeElement,
    BoxElement,
    Filled,
    ImageElement,
    LineElement,
    TextElement,
)

FORMATS = {
    "code128": zxingcpp.BarcodeFormat.Code128,
    "gs1_128": zxingcpp.BarcodeFormat.Code128,
    "qr": zxingcpp.BarcodeFormat.QRCode,
    "datamatrix": zxingcpp.BarcodeFormat.DataMatrix,
}
TEMPLATES_DIR = Path(__file__).parent / "templates"


@cache
def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=px)


def barcode_image(e: BarcodeElement, dpi: int) -> Image.Image:
    """The barcode as a 1-bit image, modules `e.module` mm wide, linear codes `e.height` mm high."""
    options = {"gs1": True} if e.type == "gs1_128" else {}
    code = zxingcpp.create_barcode(e.data, FORMATS[e.type], **options)
    module_px = max(1, round(e.module * dpi / 25.4))
    raw = code.to_image(scale=1, add_quiet_zones=False)
    view = memoryview(raw)  # type: ignore[arg-type]  # zxingcpp.Image has the buffer protocol
    height, width = view.shape or (0, 0)
    image = Image.frombytes("L", (width, height), view.tobytes())
    if e.type in ("code128", "gs1_128"):
        image = image.crop((0, 0, width, 1))
        return image.resize(
            (width * module_px, max(1, round(e.height * dpi / 25.4))), Image.Resampling.NEAREST
        )
    return image.resize((width * module_px, height * module_px), Image.Resampling.NEAREST)


def load_image(path: str, width_px: int) -> Image.Image:
    p = Path(path)
    if not p.is_absolute():
        p = TEMPLATES_DIR / p
    with Image.open(p) as source:
        image = source.convert("L")
    height = max(1, round(image.height * width_px / image.width))
    return image.resize((width_px, height)).point(lambda v: 0 if v < 128 else 255, mode="1")


def render_image(label: Filled) -> Image.Image:
    t = label.template
    d = t.dots
    quiet = 8  # white margin so barcodes at the edge keep their quiet zone
    canvas = Image.new("L", (d(t.width_mm) + 2 * quiet, d(t.height_mm) + 2 * quiet), 255)
    draw = ImageDraw.Draw(canvas)
    for e in label.elements:
        x, y = d(e.x) + quiet, d(e.y) + quiet
        if isinstance(e, TextElement):
            font = _font(max(8, d(e.size)))
            draw.text((x, y), e.text, fill=0, font=font, stroke_width=1 if e.bold else 0, stroke_fill=0)
        elif isinstance(e, BarcodeElement):
            canvas.paste(barcode_image(e, t.dpi), (x, y))
        elif isinstance(e, BoxElement):
            draw.rectangle((x, y, x + d(e.w), y + d(e.h)), outline=0, width=max(1, d(e.thickness)))
        elif isinstance(e, LineElement):
            end = (x, y + d(e.length)) if e.vertical else (x + d(e.length), y)
            draw.line(((x, y), end), fill=0, width=max(1, d(e.thickness)))
        elif isinstance(e, ImageElement):
            canvas.paste(load_image(e.path, d(e.w)).convert("L"), (x, y))
    return canvas


def render_png(label: Filled) -> bytes:
    out = io.BytesIO()
    render_image(label).save(out, format="PNG", dpi=(label.template.dpi, label.template.dpi))
    return out.getvalue()
