"""The pure parts of document printing: fitting a page to a label, the ZPL `^GF` graphic with its
`:Z64:` compression and CRC, ESC/POS `GS v 0` bands, each read back by the decoders the printer
simulator uses (simulators/printed.py)."""

from __future__ import annotations

import os

import pytest

from edge_agent.printing.documents import escpos_raster, zpl_gf
from edge_agent.printing.documents.fit import fit, whole_pixel_scale
from simulators.printed import escpos_bitmaps, gf_bitmaps


def test_a_page_fits_its_label_upright_or_turned_never_stretched() -> None:
    f = fit(288, 432, 812, 1218)  # a 4x6" PDF page (points) on a 4x6" label at 203 dpi
    assert not f.rotate and (f.width, f.height) == (812, 1218) and abs(f.scale - 812 / 288) < 1e-9
    f = fit(432, 288, 812, 1218)  # 6x4" landscape: turned, as large as upright would be
    assert f.rotate and (f.width, f.height) == (812, 1218)
    f = fit(595, 842, 812, 1218)  # A4: the same scale across and along, within the label
    assert not f.rotate and f.width <= 812 and f.height <= 1218
    assert abs(f.width / f.height - 595 / 842) < 0.01
    f = fit(842, 595, 576, None)  # landscape A4 on an 80 mm roll: turned, the roll takes its length
    assert f.rotate and f.width == 576 and f.height == int(842 * 576 / 595)
    with pytest.raises(ValueError, match="no area"):
        fit(0, 100, 812, 1218)


@pytest.mark.parametrize(("scale", "whole"), [(1.0, 1.0), (1.05, 1.0), (2.03, 2.0), (1.9, 1.9), (0.68, 0.68)])
def test_a_raster_keeps_whole_pixels_where_the_fit_allows(scale: float, whole: float) -> None:
    assert whole_pixel_scale(scale) == whole


def test_zpl_graphic_field_with_z64_and_its_crc() -> None:
    bitmap = os.urandom(100) + bytes(9900)  # 100 rows of 100 bytes: mostly white, compresses
    label = zpl_gf.label(bitmap, 100)
    assert label.startswith(b"^XA^PW800^LL100^LH0,0^FO0,0^GFA,10000,10000,100,:Z64:")
    assert label.endswith(b"^PQ1,0,1,Y^XZ\n") and len(label) < 1000
    assert gf_bitmaps(label) == [(bitmap, 100)]
    broken = label.replace(b"^FS", b"^FS", 1)
    body_start = broken.index(b":Z64:") + 5
    tampered = (
        broken[:body_start]
        + (b"B" if broken[body_start : body_start + 1] != b"B" else b"C")
        + broken[body_start + 1 :]
    )
    with pytest.raises(ValueError, match="CRC"):
        gf_bitmaps(tampered)
    with pytest.raises(ValueError, match="not rows of 7"):
        zpl_gf.graphic_field(bytes(10), 7)


def test_zpl_ascii_hex_with_repeat_counts_is_read_too() -> None:
    # ZPL's own compression: G-Y repeat 1-19, g-z 20-400, ',' the rest of the row white, ':' the row again
    field = b"^XA^FO0,0^GFA,12,12,4,IF0,\n:\nhF^FS^XZ"  # I: 3 x F; h: 40 x F, cut at the total
    assert gf_bitmaps(field) == [(b"\xff\xf0\x00\x00" * 2 + b"\xff" * 4, 4)]


def test_escpos_raster_goes_in_bands_and_pages_end_with_a_cut() -> None:
    bitmap = bytes(range(256)) * 300  # 72 bytes a row would not divide; 48 bytes x 1600 rows
    rows = len(bitmap) // 48
    page = escpos_raster.page(bitmap, 48)
    assert page.startswith(b"\x1b@\x1dv0\x00\x30\x00\x00\x01") and page.endswith(b"\x1dV\x42\x00")
    assert page.count(b"\x1dv0\x00") >= rows // escpos_raster.BAND_ROWS  # no band taller than 256 rows
    assert escpos_bitmaps(page * 2) == [(bitmap, 48), (bitmap, 48)]
