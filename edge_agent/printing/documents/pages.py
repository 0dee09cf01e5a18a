"""Pages of a document or an image as 1-bit rasters sized for a label. Runs in the renderer's
worker process (renderer.py): it parses untrusted input with PDFium and Pillow."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

from edge_agent.printing.documents import DocumentError, escpos_raster, zpl_gf
from edge_agent.printing.documents.fit import Fit, fit, whole_pixel_scale
from edge_agent.printing.documents.snap import snap

MAX_PAGE_PIXELS = 40_000_000
"""No page or image is rasterised larger than this, pixels (a 4x6" label at 600 dpi is 8.6 million)."""
MAX_GRAPHIC_BYTES = 1_536 * 1024
"""The largest `^GF` graphic sent, uncompressed: a label's bitmap is decompressed into the printer's
image buffer, and a 4x6" label at 600 dpi (1.1 MB) fits the smallest of current Zebra printers."""
HI_PIXELS = 6_000_000
"""A page is rendered at up to 4x the label's dots, within this many pixels, to measure its barcodes
(6 million: 2.4x a 4x6" label at 203 dpi, where a 3-dot module is 7 pixels; zxing-cpp's pass over
the page is most of the render time, and grows with it)."""
THRESHOLD = 128
"""Grey levels below this are black: bars drawn black stay black after anti-aliased rendering
covers more than half a dot, and the gap between them stays white."""


@dataclass(frozen=True, slots=True)
class Profile:
    """The printer a document is rasterised for."""

    language: str
    """`zpl` or `escpos`."""
    dpi: int
    width: int
    """Printable width, dots."""
    height: int | None
    """Label length, dots; None: a roll (ESC/POS), as long as the page needs."""
    max_pages: int
    max_pixels: int
    """The most pixels one page may be rendered at before it is cut to the label, any source."""


@dataclass(frozen=True, slots=True)
class Raster:
    bitmap: bytes
    """Rows MSB first, 1 = black."""
    bytes_per_row: int
    rows: int
    fit: Fit


def _mono(image: object) -> tuple[bytes, int]:
    from PIL import Image, ImageOps

    assert isinstance(image, Image.Image)
    grey = image.convert("L")
    bits = (
        ImageOps.invert(grey)
        .point(lambda v: 255 if v > 255 - THRESHOLD else 0)
        .convert("1", dither=Image.Dither.NONE)
    )
    return bits.tobytes(), (grey.width + 7) // 8


def _pdf_pages(data: bytes, profile: Profile) -> list[Raster]:
    from PIL import Image

    doc = _open_pdf(data, profile.max_pages)
    try:
        out = []
        count = len(doc)
        for index in range(count):
            page = doc[index]
            w, h = page.get_size()
            f = fit(w, h, profile.width, profile.height)
            if f.width * f.height > profile.max_pixels:
                raise DocumentError(
                    f"page {index + 1} would be {f.width} x {f.height} dots; at most {profile.max_pixels}"
                )
            size = (f.height, f.width) if f.rotate else (f.width, f.height)
            # rendered finer than the label, so the barcodes can be measured before they are redrawn
            fine = max(1.0, min(4.0, math.sqrt(HI_PIXELS / (size[0] * size[1]))))
            hi = page.render(scale=f.scale * fine, grayscale=True, fill_color=(255, 255, 255, 255),
                             optimize_mode="print").to_pil().convert("L")  # fmt: skip
            page.close()
            target = hi.resize(size, Image.Resampling.BOX)
            snap(hi, target, size[0] / hi.width)
            out.append(_finish(target, f))
        return out
    finally:
        doc.close()


def _image_pages(data: bytes, profile: Profile) -> list[Raster]:
    from PIL import Image

    image = _open_image(data)
    w, h = image.size
    if w * h > profile.max_pixels:  # checked on the header, before a pixel is decoded
        raise DocumentError(f"the image is {w} x {h} pixels; at most {profile.max_pixels}")
    try:
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DocumentError(f"the image cannot be decoded: {exc}") from None
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        backdrop = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(backdrop, image.convert("RGBA"))
    grey = image.convert("L")
    f = fit(w, h, profile.width, profile.height)
    scale = whole_pixel_scale(f.scale)
    size = (max(1, int(w * scale + 1e-6)), max(1, int(h * scale + 1e-6)))
    if scale == int(scale):
        target = grey.resize(size, Image.Resampling.NEAREST)  # whole dots per pixel: every edge stays
    else:
        target = grey.resize(size, Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR)
        snap(grey, target, size[0] / w)
    return [_finish(target, Fit(scale, f.rotate, *((size[1], size[0]) if f.rotate else size)))]


def _finish(target: Any, f: Fit) -> Raster:
    """Thresholded, turned when the fit says so, packed."""
    from PIL import Image

    if f.rotate:
        target = target.transpose(Image.Transpose.ROTATE_270)  # a quarter turn clockwise
    packed, per_row = _mono(target)
    return Raster(packed, per_row, target.height, f)


def rasters(kind: str, data: bytes, profile: Profile) -> list[Raster]:
    """One raster per page; raises DocumentError naming what is wrong."""
    if kind == "pdf":
        return _pdf_pages(data, profile)
    if kind == "image":
        return _image_pages(data, profile)
    raise DocumentError(f"unknown document kind {kind!r}")


def as_pdf(kind: str, data: bytes, max_pages: int, copies: int) -> bytes:
    """For an office printer: the PDF as it came (checked), or an image as a PDF page at its own
    resolution; `copies` times over, collated."""
    import pypdfium2 as pdfium

    if kind == "image":
        image = _open_image(data)
        image.load()
        out = io.BytesIO()
        dpi = image.info.get("dpi", (203, 203))[0] or 203
        image.convert("RGB").save(out, "PDF", resolution=float(dpi))
        data = out.getvalue()
    source = _open_pdf(data, max_pages)
    try:
        if copies == 1:
            return data
        doc = pdfium.PdfDocument.new()
        for _ in range(copies):
            doc.import_pages(source)
        buf = io.BytesIO()
        doc.save(buf)
        doc.close()
        return buf.getvalue()
    finally:
        source.close()


def render(kind: str, data: bytes, profile: Profile, copies: int) -> bytes:
    """The printer's bytes for the whole document, `copies` times over, collated."""
    if profile.language == "pdf":
        return as_pdf(kind, data, profile.max_pages, copies)
    pages = rasters(kind, data, profile)
    if profile.language == "zpl":
        for n, r in enumerate(pages, start=1):
            if len(r.bitmap) > MAX_GRAPHIC_BYTES:
                raise DocumentError(f"page {n} is a {len(r.bitmap) // 1024} KB graphic; a printer's image buffer takes "
                                    f"at most {MAX_GRAPHIC_BYTES // 1024} KB (lower the printer's dpi or label size)")  # fmt: skip
        once = b"".join(zpl_gf.label(r.bitmap, r.bytes_per_row) for r in pages)
    else:
        once = b"".join(escpos_raster.page(r.bitmap, r.bytes_per_row) for r in pages)
    return once * copies


def count_pages(kind: str, data: bytes, max_pages: int, max_pixels: int = MAX_PAGE_PIXELS) -> int:
    """The pages a document has, checked as `rasters` will check them, without rendering one."""
    if kind == "image":
        w, h = _open_image(data).size
        if w * h > max_pixels:
            raise DocumentError(f"the image is {w} x {h} pixels; at most {max_pixels}")
        return 1
    doc = _open_pdf(data, max_pages)
    try:
        return len(doc)
    finally:
        doc.close()


def _open_image(data: bytes) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError) as exc:
        raise DocumentError(f"not a readable image: {exc}") from None
    if image.format not in ("PNG", "JPEG"):
        raise DocumentError(f"a {image.format} image; PNG or JPEG only")
    return image


def _open_pdf(data: bytes, max_pages: int) -> Any:
    """The document, open; its security and page count checked. The caller closes it."""
    import pypdfium2 as pdfium
    from pypdfium2 import raw

    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise DocumentError("the PDF is encrypted (it needs a password)") from None
        raise DocumentError(f"not a readable PDF: {exc}") from None
    count = len(doc)
    problem = (
        "the PDF is encrypted" if raw.FPDF_GetSecurityHandlerRevision(doc.raw) != -1
        else "the PDF has no pages" if count == 0
        else f"the PDF has {count} pages; at most {max_pages} (printing.max_pages)" if count > max_pages
        else None
    )  # fmt: skip
    if problem is not None:
        doc.close()
        raise DocumentError(problem)
    return doc
