"""PDF and image print jobs end to end: the agent process, a real broker, the printer simulators
on TCP. What each printer received is decoded back to bitmaps (simulators/printed.py) and every
barcode of the source document is read from them with zxing-cpp."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import os
import time
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from PIL import Image

from edge_agent.printing.documents import DocumentError
from edge_agent.printing.documents.pages import Profile, rasters
from edge_agent.printing.documents.renderer import DocumentRenderer
from simulators.central import Central
from simulators.printed import escpos_bitmaps, gf_bitmaps, to_image
from tests.agentproc import write_config
from tests.broker import Broker
from tests.documents import a4_packing_slip, a4_with_label, carrier_4x6, png_label, read_codes, two_pages
from tests.harness import wait_until
from tests.test_printing_jobs import events, job

DOCUMENTS = {
    "carrier 4x6 PDF": ("pdf", carrier_4x6),
    "A4 page holding a label": ("pdf", a4_with_label),
    "A4 packing slip, 0.33 mm modules": ("pdf", a4_packing_slip),
    "2-page PDF": ("pdf", two_pages),
    "PNG at 300 dpi": ("image", lambda: png_label(300)),
    "PNG 6x4 at 203 dpi": ("image", lambda: png_label(203, landscape=True)),
}
PRINTERS = {"ZPL 203 dpi": ("zpl", 203, 812, 1218), "ZPL 300 dpi": ("zpl", 300, 1200, 1800),
            "ESC/POS 80 mm": ("escpos", 203, 576, None)}  # fmt: skip


def printed_images(lang: str, data: bytes) -> list[Image.Image]:
    pages = gf_bitmaps(data) if lang == "zpl" else escpos_bitmaps(data)
    return [to_image(bitmap, per_row) for bitmap, per_row in pages]


def linear_bars(image: Image.Image, fmt: str) -> tuple[list[int], int, int]:
    """The first `fmt` symbol found, its bars upright: bar and space widths across its middle in
    dots, and how many dark pixels lie in its columns within 3 rows above and below its bars (the
    rows on which every line is the middle line's). 0 for a symbol redrawn whole: no stubs of the
    bars as rendered, no guard bars left behind."""
    import zxingcpp

    def first(img: Image.Image) -> Any:
        return next(b for b in zxingcpp.read_barcodes(img) if b.format.name.replace(" ", "") == fmt)

    barcode = first(image)
    if barcode.orientation % 180:
        image = image.transpose(Image.Transpose.ROTATE_90)
        barcode = first(image)
    p = barcode.position
    xs = [p.top_left.x, p.top_right.x, p.bottom_left.x, p.bottom_right.x]
    ys = [p.top_left.y, p.top_right.y, p.bottom_left.y, p.bottom_right.y]
    y = (min(ys) + max(ys)) // 2
    # from well inside the quiet zones on either side (zxing-cpp's corners may sit inside the end bars)
    x0, x1 = max(0, min(xs) - 30), min(image.width, max(xs) + 31)

    def line(at: int) -> list[bool]:
        return [image.getpixel((x, at)) < 128 for x in range(x0, x1)]

    row = line(y)
    runs, count = [], 1
    for a, b in itertools.pairwise(row):
        if a == b:
            count += 1
        else:
            runs.append((a, count))
            count = 1
    runs.append((row[-1], count))
    while runs and not runs[0][0]:
        runs.pop(0)
    while runs and not runs[-1][0]:
        runs.pop()
    top, bottom = y, y
    while top > 0 and line(top - 1) == row:
        top -= 1
    while bottom < image.height - 1 and line(bottom + 1) == row:
        bottom += 1
    around = [*range(max(0, top - 3), top), *range(bottom + 1, min(image.height, bottom + 4))]
    return [n for _, n in runs], bottom - top + 1, sum(sum(line(r)) for r in around)


@pytest.mark.parametrize("printer", list(PRINTERS))
@pytest.mark.parametrize("document", list(DOCUMENTS))
def test_every_barcode_reads_back_from_the_raster_on_whole_dots(document: str, printer: str) -> None:
    kind, make = DOCUMENTS[document]
    data, codes = make()
    lang, dpi, width, height = PRINTERS[printer]
    pages = rasters(kind, data, Profile(lang, dpi, width, height, 20, 40_000_000))
    found: set[tuple[str, str]] = set()
    for r in pages:
        assert r.fit.width <= width and r.bytes_per_row == (r.fit.width + 7) // 8
        assert height is None or r.rows <= height
        image = to_image(r.bitmap, r.bytes_per_row)
        found |= read_codes(image)
        for fmt in {c.format for c in codes} & {"Code128", "EAN13"}:
            if not read_codes(image) & {(fmt, c.text) for c in codes}:
                continue  # on the other page
            runs, tall, stray = linear_bars(image, fmt)
            module = min(runs)
            assert all(n % module == 0 for n in runs), runs  # every bar and space whole modules of whole dots
            assert tall >= 40 and stray == 0, (fmt, tall, stray)  # the bars whole, nothing left around them
    assert {(c.format, c.text) for c in codes} <= found
    assert len(pages) == (2 if document == "2-page PDF" else 1)


def test_a_page_is_never_stretched() -> None:
    """A 60 x 30 mm box drawn on an A4 page comes out with the same proportions on each printer."""
    pdf = FPDF(unit="mm", format="A4")
    pdf.add_page()
    pdf.rect(20, 20, 60, 30, style="F")
    for lang, dpi, width, height in PRINTERS.values():
        (r,) = rasters("pdf", bytes(pdf.output()), Profile(lang, dpi, width, height, 20, 40_000_000))
        box = to_image(r.bitmap, r.bytes_per_row).point(lambda v: 255 - v).getbbox()
        assert box is not None
        w, h = box[2] - box[0], box[3] - box[1]
        assert abs(w / h - 2.0) < 0.05, (lang, dpi, w, h)


def start(
    tmp_path: Path, broker: Broker, agents: Any, printers: Any, extra: str = ""
) -> tuple[Any, Any, Any]:
    zpl, escpos = printers("zpl"), printers("escpos", ("--jobs-dir", str(tmp_path / "jobs-escpos")))
    config = write_config(tmp_path, broker.port, extra=(
        "printers:\n"
        f"  - {{id: z1, language: zpl, transport: tcp, host: 127.0.0.1, port: {zpl.port}, dpi: 300,"
        " label: {width_mm: 101.6, height_mm: 152.4}}\n"
        f"  - {{id: e1, language: escpos, transport: tcp, host: 127.0.0.1, port: {escpos.port}}}\n"
        "printing: {poll_interval_s: 0.3, status_timeout_s: 1.0, max_pages: 3}\n" + extra))  # fmt: skip
    agent = agents(config)
    agent.wait_for("printer.status", printer="z1")
    agent.wait_for("printer.status", printer="e1")
    return agent, zpl, escpos


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def final(central: Central, job_id: str) -> dict[str, Any]:
    done = ("printed", "rejected", "failed")
    wait_until(lambda: any(e["job_id"] == job_id and e["state"] in done for e in events(central, "event/print")),
               what=f"{job_id} done", timeout=60)  # fmt: skip
    return next(e for e in events(central, "event/print") if e["job_id"] == job_id and e["state"] in done)


def test_documents_print_on_zpl_and_escpos_and_every_barcode_reads_back(
    tmp_path: Path, broker: Broker, central: Central, agents: Any, printers: Any
) -> None:
    agent, zpl, escpos = start(tmp_path, broker, agents, printers)
    carrier, carrier_codes = carrier_4x6()
    two, two_codes = two_pages()
    png, png_codes = png_label(203)
    job(central, {"job_id": "D-1", "printer": "z1", "pdf_b64": b64(carrier)})
    job(central, {"job_id": "D-2", "printer": "e1", "pdf_b64": b64(two), "copies": 2})
    job(central, {"job_id": "D-3", "printer": "z1", "image_b64": b64(png)})
    for job_id in ("D-1", "D-2", "D-3"):
        assert final(central, job_id)["state"] == "printed"
    zpl_jobs = sorted((tmp_path / "jobs").glob("job-*"))
    escpos_jobs = sorted((tmp_path / "jobs-escpos").glob("job-*"))
    assert len(zpl_jobs) == 2 and len(escpos_jobs) == 1
    (first,) = printed_images("zpl", zpl_jobs[0].read_bytes())
    assert first.size == (
        1224,
        1828,
    )  # the 300 dpi (12 dots/mm) printer's 4x6 label: 1219 dots and a byte's padding
    assert {(c.format, c.text) for c in carrier_codes} <= read_codes(first)
    (png_page,) = printed_images("zpl", zpl_jobs[1].read_bytes())
    assert {(c.format, c.text) for c in png_codes} <= read_codes(png_page)
    pages = printed_images("escpos", escpos_jobs[0].read_bytes())
    assert len(pages) == 4 and all(p.width == 576 for p in pages)  # two copies of two pages, collated
    assert [read_codes(p) for p in pages[:2]] == [read_codes(p) for p in pages[2:]]
    assert {(c.format, c.text) for c in two_codes} <= read_codes(pages[0]) | read_codes(pages[1])
    rendered = [r for r in agent.records() if r["event"] == "job.rendered"]
    assert len(rendered) == 3 and all(r["ms"] > 0 for r in rendered)


def encrypted_pdf() -> bytes:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="user")
    pdf.add_page()
    return bytes(pdf.output())


def many_pages(n: int) -> bytes:
    pdf = FPDF()
    for _ in range(n):
        pdf.add_page()
    return bytes(pdf.output())


def huge_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (12000, 12000), 1).save(buf, "PNG")  # 144 million pixels in a few kilobytes
    return buf.getvalue()


def test_bad_documents_are_rejected_and_nothing_reaches_a_printer(
    tmp_path: Path, broker: Broker, central: Central, agents: Any, printers: Any
) -> None:
    agent, zpl, escpos = start(tmp_path, broker, agents, printers)
    gif = io.BytesIO()
    Image.new("L", (10, 10)).save(gif, "GIF")
    bad = {
        "B-1": ({"pdf_b64": "not base64 at all!"}, "pdf_b64 is not base64"),
        "B-2": ({"pdf_b64": b64(b"%PDF-1.7\n garbage, no xref, nothing")}, "not a readable PDF"),
        "B-3": ({"pdf_b64": b64(encrypted_pdf())}, "encrypted"),
        "B-4": ({"pdf_b64": b64(many_pages(4))}, "4 pages; at most 3 (printing.max_pages)"),
        "B-5": ({"image_b64": b64(huge_png())}, "12000 x 12000 pixels"),
        "B-6": ({"image_b64": b64(gif.getvalue())}, "PNG or JPEG only"),
        "B-7": ({"image_b64": b64(b"\x89PNG\r\n\x1a\n truncated")}, "not a readable image"),
        "B-8": ({"pdf_b64": b64(carrier_4x6()[0]), "zpl": "^XA^XZ"}, "exactly one of"),
    }
    for job_id, (body, _) in bad.items():
        job(central, {"job_id": job_id, "printer": "z1" if job_id < "B-5" else "e1", **body})
    for job_id, (_, words) in bad.items():
        event = final(central, job_id)
        assert event["state"] == "rejected", (job_id, event)
        assert event["error"]["code"] == ("bad_job" if job_id == "B-8" else "bad_document")
        assert words in event["error"]["message"], event["error"]
    job(
        central, {"job_id": "OK-1", "printer": "z1", "pdf_b64": b64(carrier_4x6()[0])}
    )  # the renderer lives on
    assert final(central, "OK-1")["state"] == "printed"
    assert len(list((tmp_path / "jobs").glob("job-*"))) == 1
    assert not (tmp_path / "jobs-escpos").exists() or not list((tmp_path / "jobs-escpos").glob("job-*"))


def test_the_renderer_process_is_bounded_and_comes_back() -> None:
    """A render that runs past its deadline is killed; one that dies (PDFium crashing) or wants
    more memory than the limit ends in a DocumentError naming it; the next document renders. (What
    the worker runs is the standard library's: a function of this module would have it import pytest
    and the suite's helpers, a second taken from the deadline on a loaded machine.)"""
    renderer = DocumentRenderer(lambda: (1.0, 512))

    async def main() -> None:
        with pytest.raises(DocumentError, match="not rendered within 1 s"):
            await renderer._call(time.sleep, 30)
        with pytest.raises(DocumentError, match="renderer died"):
            await renderer._call(os.abort)
        with pytest.raises(DocumentError, match="more than 512 MB"):
            await renderer._call(bytearray, 1024 * 1024 * 1024)
        assert renderer.restarts == 2
        data, codes = carrier_4x6()
        out = await renderer.render("pdf", data, Profile("zpl", 203, 812, 1218, 20, 40_000_000), 1)
        (image,) = printed_images("zpl", out)
        assert {(c.format, c.text) for c in codes} <= read_codes(image)

    try:
        asyncio.run(main())
    finally:
        renderer.close()


def test_a_new_renderers_start_is_not_taken_from_the_documents_deadline() -> None:
    """A spawned worker spends a fifth of a second here (seconds on a loaded Pi) importing PDFium
    and Pillow: with a deadline shorter than that, the first call after a start, and the first after
    a kill, still render in time, each in a worker of its own."""
    renderer = DocumentRenderer(lambda: (0.05, 512))

    async def main() -> None:
        first = await renderer._call(os.getpid)
        assert first != os.getpid() and await renderer._call(os.getpid) == first  # kept warm
        with pytest.raises(DocumentError, match=r"not rendered within 0\.05 s"):
            await renderer._call(time.sleep, 30)
        assert await renderer._call(os.getpid) not in (first, os.getpid())
        assert renderer.restarts == 1

    try:
        asyncio.run(main())
    finally:
        renderer.close()


def test_a_graphic_larger_than_a_printers_image_buffer_is_refused() -> None:
    """A page fitted to a 200 x 300 mm label at 600 dpi would be a 2.6 MB ^GF: refused, naming why."""
    from edge_agent.printing.documents.pages import render

    data, _ = carrier_4x6()
    with pytest.raises(DocumentError, match="KB graphic; a printer's image buffer takes at most 1536 KB"):
        render("pdf", data, Profile("zpl", 600, 4724, 7087, 20, 40_000_000), 1)
