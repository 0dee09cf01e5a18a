"""USB HID POS scales (usage page 0x8D): the 6-byte scale data report. Pure: reports in,
`Reading`s out.

    byte 0  report id (3: scale data)     byte 3  exponent, signed: weight = raw x 10^exp
    byte 1  status                        bytes 4-5  raw weight, little-endian, unsigned
    byte 2  unit

Status: 1 fault, 2 stable at zero, 3 in motion, 4 stable, 5 under zero, 6 over the weight limit,
7 needs calibration, 8 needs re-zeroing. Units: 1 mg, 2 g, 3 kg, 11 oz, 12 lb (others are not
weights a dock uses and are reported as errors). From /dev/hidrawN each read is one report; from
a FIFO the reports arrive back to back, so `ReportReader` cuts them at 6 bytes.
"""

from __future__ import annotations

from drivers.scales.reading import Reading, State, to_grams

REPORT_SIZE = 6
DATA_REPORT = 3
UNITS = {1: "mg", 2: "g", 3: "kg", 11: "oz", 12: "lb"}
_STATES: dict[int, tuple[State, str]] = {1: ("error", "fault"), 3: ("motion", "in motion"), 5: ("underload", "under zero"),
           6: ("overload", "over the weight limit"), 7: ("error", "needs calibration"),
           8: ("error", "needs re-zeroing")}  # fmt: skip


def parse_report(report: bytes) -> Reading | None:
    """One input report; None for a report that is not scale data (another report id)."""
    if len(report) != REPORT_SIZE:
        return Reading("error", None, False, f"a scale data report has 6 bytes, not {len(report)}")
    report_id, status, unit, exponent = report[0], report[1], report[2], report[3]
    if report_id != DATA_REPORT:
        return None
    exp = exponent - 256 if exponent > 127 else exponent
    raw = report[4] | report[5] << 8
    name = UNITS.get(unit)
    shown = report.hex(" ")
    if status in _STATES:
        state, why = _STATES[status]
        grams = to_grams(raw * 10.0**exp, name) if name and state == "motion" else None
        return Reading(state, grams, False, f"{shown}: {why}")
    if status not in (2, 4):
        return Reading("error", None, False, f"{shown}: unknown status {status}")
    if name is None:
        return Reading("error", None, False, f"{shown}: unit {unit} is not a weight unit")
    grams = 0.0 if status == 2 else to_grams(raw * 10.0**exp, name)
    return Reading("ok", grams, True, shown)


class ReportReader:
    """Reports from a byte stream (a FIFO), whole, in pieces or back to back."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Reading]:
        self._buf += data
        out: list[Reading] = []
        while len(self._buf) >= REPORT_SIZE:
            reading = parse_report(bytes(self._buf[:REPORT_SIZE]))
            del self._buf[:REPORT_SIZE]
            if reading is not None:
                out.append(reading)
        return out

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)
