"""Indicators that send their weight line after line without being asked (A&D, CAS and their
kin). Pure: bytes in, `Reading`s out.

    ST,GS,+  1.234kg      ST stable (QT: stable, counting), US unstable, OL overload;
    US,NT,-001.568lb      GS gross, NT net, TR tare (optional);
    ST,+00081.72  g       the A&D standard format has no second header

Field widths and padding differ by model, so a line is read by its parts (header, optional
second header, sign, digits, unit), not by columns. Lines end with CR LF, CR or LF.
"""

from __future__ import annotations

import re

from drivers.scales.lines import LineParser
from drivers.scales.reading import Reading, to_grams

MAX_LINE = 64
_LINE = re.compile(
    r"^\s*(ST|US|QT)\s*,\s*(?:(GS|NT|TR)\s*,)?\s*([+-]?)\s*([0-9]*\.?[0-9]+)?\s*([A-Za-z]+)?\s*$"
)
_BARE = re.compile(r"^\s*([+-]?)\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]+)\s*$")


def parse_line(line: str) -> Reading | None:
    """One line as a reading; None for a line that is not a weight line (a blank one)."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("OL"):  # out of range: the digits are blanked or a placeholder (9999999E+19)
        return Reading("overload", None, False, text)
    if text.startswith("LO"):
        return Reading("underload", None, False, text)
    m = _LINE.match(text)
    if m is None:
        bare = _BARE.match(text)
        if bare is None:
            return Reading("error", None, False, f"{text!r} is not a weight line")
        try:
            grams = to_grams(float(bare[1] + bare[2]), bare[3])
        except ValueError as exc:
            return Reading("error", None, False, f"{text!r}: {exc}")
        if grams < 0:
            return Reading("underload", grams, False, text, flagged=False)
        return Reading("motion", grams, False, text, flagged=False)
    header, _kind, sign, digits, unit = m.groups()
    if digits is None or unit is None:
        return Reading("error", None, False, f"{text!r} has no weight")
    try:
        grams = to_grams(float(sign + digits), unit)
    except ValueError as exc:
        return Reading("error", None, False, f"{text!r}: {exc}")
    stable = header in ("ST", "QT")
    if grams < 0 and stable:
        return Reading("underload", grams, True, text)
    return Reading("ok" if stable else "motion", grams, stable, text)


class ContinuousParser(LineParser):
    """Bytes from the indicator as they arrive; `feed` returns the readings of every line ended."""

    def __init__(self) -> None:
        super().__init__(parse_line, MAX_LINE)
