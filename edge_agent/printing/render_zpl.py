"""A filled template to ZPL II. Pure.

Every field's data goes through `^FH` hex escaping: `^`, `~` and `\\` in data become `\\5E`,
`\\7E`, `\\5C`, so data can never become a ZPL command (`^XZ`, `~JR` print as text).
"""

from __future__ import annotations

from edge_agent.printing.templates import (
    BarcodeElement,
    BoxElement,
    Filled,
    ImageElement,
    LineElement,
    TextElement,
)

_ESCAPES = str.maketrans({"\\": "\\5C", "^": "\\5E", "~": "\\7E"})


def field_data(text: str) -> str:
    """Data for `^FH\\^FD...^FS`, with ZPL's command characters hex-escaped."""
    return text.translate(_ESCAPES).replace("\r", " ").replace("\n", " ")


def render_zpl(label: Filled, copies: int = 1) -> bytes:
    t = label.template
    d = t.dots
    out = ["^XA", "^CI28", f"^PW{d(t.width_mm)}", f"^LL{d(t.height_mm)}", "^LH0,0"]
    for e in label.elements:
        at = f"^FO{d(e.x)},{d(e.y)}"
        if isinstance(e, TextElement):
            h = max(10, d(e.size))
            w = round(h * (1.0 if e.bold else 0.8))
            out.append(f"{at}^A0N,{h},{w}^FH\\^FD{field_data(e.text)}^FS")
        elif isinstance(e, BarcodeElement):
            module = max(1, d(e.module))
            if e.type == "qr":
                out.append(f"{at}^BQN,2,{min(10, module)}^FH\\^FDQA,{field_data(e.data)}^FS")
            elif e.type == "datamatrix":
                out.append(f"{at}^BXN,{module},200^FH\\^FD{field_data(e.data)}^FS")
            elif e.type == "gs1_128":
                # mode D (UCC/EAN): parentheses delimit AIs, FNC1s are added by the printer
                out.append(f"{at}^BY{module}^BCN,{d(e.height)},Y,N,N,D^FH\\^FD{field_data(e.data)}^FS")
            else:
                out.append(f"{at}^BY{module}^BCN,{d(e.height)},Y,N,N^FH\\^FD{field_data(e.data)}^FS")
        elif isinstance(e, BoxElement):
            out.append(f"{at}^GB{d(e.w)},{d(e.h)},{max(1, d(e.thickness))}^FS")
        elif isinstance(e, LineElement):
            length, thick = d(e.length), max(1, d(e.thickness))
            out.append(
                f"{at}^GB{thick if e.vertical else length},{length if e.vertical else thick},{thick}^FS"
            )
        elif isinstance(e, ImageElement):
            out.append(f"{at}{_graphic(e, t.dpi)}^FS")
    if copies > 1:
        out.append(f"^PQ{copies}")
    out.append("^XZ")
    return ("\n".join(out) + "\n").encode("utf-8")


def _graphic(e: ImageElement, dpi: int) -> str:
    from edge_agent.printing.render_png import load_image

    image = load_image(e.path, round(e.w * dpi / 25.4))
    width_bytes = (image.width + 7) // 8
    rows = []
    for y in range(image.height):
        bits = 0
        row = bytearray()
        for x in range(width_bytes * 8):
            black = x < image.width and image.getpixel((x, y)) == 0
            bits = (bits << 1) | int(black)
            if x % 8 == 7:
                row.append(bits)
                bits = 0
        rows.append(row.hex().upper())
    total = width_bytes * image.height
    return f"^GFA,{total},{total},{width_bytes},{''.join(rows)}"
