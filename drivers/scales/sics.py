"""Mettler Toledo MT-SICS over a serial line. Pure: replies in, `Reading`s out.

Requests are ASCII commands ended by CR LF: `SI` (the weight now, stable or not), `S` (the next
stable weight; the scale answers `S I` when it cannot settle), `@` (reset; the answer is the
serial number line, `I4 A "..."`, which some balances also send at power-on). Replies:

    S S     100.00 g      stable weight (the value is a 10-character field, right-aligned)
    S D     100.02 g      dynamic: the pan is still moving
    S I / S + / S -       busy or no stability in time / overload / underload (pan missing)
    S L, ES, ET, EL       a logical error, or the general errors syntax, transmission, logic
    S S  Error 10b        a weighing-module fault in the weight field

Lines end with CR LF; a lone CR or LF ends one too (some balances are set to either). Anything
else (an `I4 A` line, an echo) is skipped, not an error: the scale speaks between our requests.
"""

from __future__ import annotations

from drivers.scales.lines import LineParser
from drivers.scales.reading import Reading, State, to_grams

WEIGH_NOW = b"SI\r\n"
WEIGH_STABLE = b"S\r\n"
RESET = b"@\r\n"
MAX_LINE = 128

_ERRORS = {"ES": "syntax error", "ET": "transmission error", "EL": "logical error"}
_STATUS: dict[str, tuple[State, str]] = {"I": ("motion", "no stable weight in time, or busy"), "+": ("overload", "overload"),
           "-": ("underload", "underload (pan missing?)"), "L": ("error", "logical error")}  # fmt: skip


def parse_line(line: str) -> Reading | None:
    """One reply line (without its terminator) as a reading; None for a line that is not a weight
    reply (an `I4 A` serial number, an `@` echo)."""
    text = line.strip()
    if text in _ERRORS:
        return Reading("error", None, False, f"{text}: {_ERRORS[text]}")
    parts = text.split(None, 2)
    if len(parts) < 2 or parts[0] not in ("S", "SI", "SIR"):
        return None
    status = parts[1]
    if status in _STATUS:
        state, why = _STATUS[status]
        return Reading(state, None, False, f"{text}: {why}")
    if status not in ("S", "D") or len(parts) < 3:
        return Reading("error", None, False, f"{text}: not an MT-SICS weight reply")
    rest = parts[2]
    if rest.startswith("Error"):
        return Reading("error", None, False, f"{text}: weighing module fault")
    value, _, unit = rest.strip().rpartition(" ")
    try:
        grams = to_grams(float(value.replace(" ", "")), unit)
    except ValueError as exc:
        return Reading("error", None, False, f"{text}: {exc}")
    stable = status == "S"
    return Reading("ok" if stable else "motion", grams, stable, text)


class SicsParser(LineParser):
    """Bytes from the balance as they arrive; `feed` returns the readings of every line ended."""

    def __init__(self) -> None:
        super().__init__(parse_line, MAX_LINE)
