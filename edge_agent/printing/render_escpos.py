"""A filled template to ESC/POS, through python-escpos (its Dummy printer collects the bytes).

Receipt printers print line by line: elements go in order of their `y`; boxes and lines become
rules; QR and Code 128 use the printer's own barcode commands, DataMatrix an image.
"""

from __future__ import annotations

import contextlib
import io

from edge_agent.printing.templates import BarcodeElement, BoxElement, Filled, LineElement, TextElement

CHARS_PER_LINE = 48


def render_escpos(label: Filled, copies: int = 1) -> bytes:
    # python-escpos prints remarks ("Using hardware barcode renderer") on stdout, which would
    # corrupt `edge-agent render -o -`; they say nothing about the label.
    with contextlib.redirect_stdout(io.StringIO()):
        return _render(label, copies)


def _render(label: Filled, copies: int) -> bytes:
    # imported here: python-escpos loads its printer capability database (0.2-0.3 s, megabytes),
    # which an agent without an ESC/POS printer never needs
    from escpos.printer import Dummy

    from edge_agent.printing.render_png import barcode_image

    printer = Dummy()
    for _ in range(copies):
        printer.hw("INIT")
        for e in sorted(label.elements, key=lambda el: (el.y, el.x)):
            if isinstance(e, TextElement):
                big = e.size >= 5
                printer.set(bold=e.bold, double_height=big, double_width=big, align="left")
                printer.textln(e.text.replace("\r", " ").replace("\n", " "))
                printer.set(bold=False, double_height=False, double_width=False)
            elif isinstance(e, BarcodeElement):
                if e.type == "qr":
                    printer.qr(e.data, size=max(1, min(16, round(e.module * 8))), native=True)
                elif e.type == "code128":
                    printer.barcode("{B" + e.data, "CODE128", height=max(1, min(255, round(e.height * 8))),
                                    width=2, pos="BELOW", function_type="B", check=False)  # fmt: skip
                else:  # GS1-128 and DataMatrix as an image: not every receipt printer has them natively
                    printer.image(barcode_image(e, 203).convert("1"))
            elif isinstance(e, BoxElement | LineElement):
                printer.textln("-" * CHARS_PER_LINE)
        printer.ln(2)
        printer.cut()
    data: bytes = printer.output
    return data


ESC_B = b"\x1bB"


def buzzer_bytes(beeps: int, duration: int) -> bytes:
    """ESC B n t: the buzzer of Epson-compatible printers (no paper moves); the bytes
    python-escpos's `buzzer()` writes, without loading python-escpos for three bytes."""
    if not (1 <= beeps <= 9 and 1 <= duration <= 9):
        raise ValueError("ESC B takes 1-9 beeps of 1-9 units")
    return ESC_B + bytes([beeps, duration])
