"""Documents (PDF) and images (PNG, JPEG) printed on any printer (contract mqtt.md "Print job").

Theory of operation. A thermal printer prints dots, so a document becomes one 1-bit raster per
page, the size of the printer's label at its dpi (`fit.py`: scaled to fit, rotated a quarter turn
where that makes it larger, never stretched; an image whose size is already close to a whole
multiple of the label's dots keeps whole pixels). Line art and barcodes are thresholded, never
dithered: a bar is black or white, so a scanner reads what the sender drew. The raster goes out
as ZPL `^GFA` with `:Z64:` compression and its CRC (`zpl_gf.py`), or as ESC/POS `GS v 0` bands
with a cut after each page (`escpos_raster.py`); both encoders are pure.

Reading a document is the dangerous part: PDFium parses whatever the sender made. It runs in a
worker process (`renderer.py`) with an address-space limit and a deadline, so a hostile or broken
document costs at most that process, is killed when late, and never holds up a scan. Bounds are
checked before any rendering: bytes, pages (`printing.max_pages`), encryption, image pixels.
Whatever fails is a `DocumentError` naming why, which the print service turns into `rejected`
with `bad_document` before anything reaches a printer.
"""

from __future__ import annotations


class DocumentError(ValueError):
    """A document that cannot be printed: unreadable, encrypted, too many pages, too large."""
