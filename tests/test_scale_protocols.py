"""The scale protocol parsers (drivers/scales/), pure: every reply of ../shared/reference/scales.md,
fed whole, one byte at a time, and with the start of the next reply behind it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from drivers.scales.continuous import ContinuousParser
from drivers.scales.hidpos import ReportReader, parse_report
from drivers.scales.reading import Reading
from drivers.scales.sics import SicsParser
from drivers.scales.stability import Stabilizer
from drivers.scales.toledo8217 import Toledo8217Parser

LB, OZ = 453.59237, 28.349523125


def three_ways(make: Callable[[], Any], wire: bytes, tail: bytes) -> list[Reading]:
    """The readings of `wire`, checked to be the same whole, byte by byte, and with `tail` (the
    start of a next reply) behind it, which stays pending."""
    whole = make().feed(wire)
    parser = make()
    single = [r for i in range(len(wire)) for r in parser.feed(wire[i : i + 1])]
    parser = make()
    trailing = parser.feed(wire + tail)
    assert whole == single == trailing
    assert parser.pending == tail.lstrip(b"\n") or parser.pending == tail
    return whole


def approx(reading: Reading, state: str, grams: float | None, stable: bool) -> bool:
    same = (grams is None and reading.grams is None) or (
        grams is not None and reading.grams is not None and abs(reading.grams - grams) < 1e-6
    )
    return reading.state == state and reading.stable is stable and same


# MT-SICS


@pytest.mark.parametrize(
    ("reply", "state", "grams", "stable"),
    [
        (b"S S     100.00 g\r\n", "ok", 100.0, True),
        (b"S D     100.02 g\r\n", "motion", 100.02, False),
        (b"S S      1.234 kg\r\n", "ok", 1234.0, True),
        (b"S S    -12.5 g\r\n", "ok", -12.5, True),
        (b"S S      2.000 lb\r\n", "ok", 2 * LB, True),
        (b"S I\r\n", "motion", None, False),  # busy, or no stability in time
        (b"S +\r\n", "overload", None, False),
        (b"S -\r\n", "underload", None, False),
        (b"S L\r\n", "error", None, False),
        (b"ES\r\n", "error", None, False),
        (b"ET\r\n", "error", None, False),
        (b"EL\r\n", "error", None, False),
        (b"S S  Error 10b\r\n", "error", None, False),
        (b"S S     100.00 furlong\r\n", "error", None, False),
    ],
)
def test_sics_replies(reply: bytes, state: str, grams: float | None, stable: bool) -> None:
    (reading,) = three_ways(SicsParser, reply, b"S S    ")
    assert approx(reading, state, grams, stable), reading
    if state == "error":
        assert reading.detail


def test_sics_skips_what_is_not_a_weight_reply_and_takes_lone_cr_or_lf() -> None:
    readings = SicsParser().feed(b'I4 A "B021002593"\r\nS S      5.00 g\rS D      6.00 g\n')
    assert [(r.state, r.grams) for r in readings] == [("ok", 5.0), ("motion", 6.0)]


# Toledo 8217


@pytest.mark.parametrize(
    ("reply", "state", "grams", "stable"),
    [
        (b"\x0201.234\r", "ok", 1234.0, True),  # three decimals: kg
        (b"\x0202.50\r", "ok", 2.5 * LB, True),  # two: lb
        (b"\x0200.950N\r", "ok", 950.0, True),  # net
        (b"\x02  3.20LB\r", "ok", 3.2 * LB, True),  # a Brecknell-style unit after the digits
        (b"\x02?A\r", "motion", None, False),  # 0x41: gross, in motion
        (b"\x02?a\r", "motion", None, False),  # 0x61: net bit set (Brecknell), in motion
        (b"\x02?B\r", "overload", None, False),  # bit 1
        (b"\x02?D\r", "underload", None, False),  # bit 2: under zero
        (b"\x02?H\r", "error", None, False),  # bit 3: outside zero capture range
        (b"\x02?@\r", "motion", None, False),  # no bit: no weight to give
        (b"\x02what\r", "error", None, False),
    ],
)
def test_toledo_8217_replies(reply: bytes, state: str, grams: float | None, stable: bool) -> None:
    (reading,) = three_ways(Toledo8217Parser, reply, b"\x0201.")
    assert approx(reading, state, grams, stable), reading


def test_toledo_8217_with_parity_bits_a_configured_unit_and_noise() -> None:
    parity = bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in b"\x0201.234\r")  # even parity on
    assert approx(Toledo8217Parser().feed(parity)[0], "ok", 1234.0, True)
    assert approx(Toledo8217Parser(unit="kg").feed(b"\x0202.50\r")[0], "ok", 2500.0, True)
    readings = Toledo8217Parser().feed(b"W\x02E\rhello\x0200.500\r")  # echo probe, noise, a weight
    assert [r.state for r in readings] == ["error", "ok"] and approx(readings[1], "ok", 500.0, True)


# Continuous output


@pytest.mark.parametrize(
    ("line", "state", "grams", "stable"),
    [
        (b"ST,GS,+  1.234kg\r\n", "ok", 1234.0, True),
        (b"US,GS,+  1.230kg\r\n", "motion", 1230.0, False),
        (b"ST,NT,+0012.34kg\r\n", "ok", 12340.0, True),
        (b"US,GS,-001.568lb\r\n", "motion", -1.568 * LB, False),
        (b"ST,+00081.72  g\r\n", "ok", 81.72, True),  # A&D standard
        (b"QT,+00081.72  g\r\n", "ok", 81.72, True),
        (b"ST,GS,+  12.5 oz\r\n", "ok", 12.5 * OZ, True),
        (b"ST,GS,-  0.020kg\r\n", "underload", -20.0, True),
        (b"OL,+9999999E+19\r\n", "overload", None, False),
        (b"OL,GS,        kg\r\n", "overload", None, False),
        (b"XX,GS,+1.0kg\r\n", "error", None, False),
        (b"+  1.234 kg\r\n", "motion", 1234.0, False),  # a bare weight: no flag, Stabilizer decides
        (b"  00081.7g\r\n", "motion", 81.7, False),
        (b"-  0.020kg\r\n", "underload", -20.0, False),
        (b"ST,GS,+  1.0 stone\r\n", "error", None, False),
    ],
)
def test_continuous_lines(line: bytes, state: str, grams: float | None, stable: bool) -> None:
    (reading,) = three_ways(ContinuousParser, line, b"ST,GS,+ ")
    assert approx(reading, state, grams, stable), reading


# HID POS


@pytest.mark.parametrize(
    ("report", "state", "grams", "stable"),
    [
        (bytes.fromhex("03 04 03 fd 9a 04"), "ok", 1178.0, True),  # 1178 x 10^-3 kg
        (bytes.fromhex("03 04 02 00 14 00"), "ok", 20.0, True),  # 20 g
        (bytes.fromhex("03 04 0b ff 34 19"), "ok", 645.2 * OZ, True),  # 6452 x 10^-1 oz
        (bytes.fromhex("03 04 0c fe e8 03"), "ok", 10.0 * LB, True),  # 1000 x 10^-2 lb
        (bytes.fromhex("03 02 0b ff 00 00"), "ok", 0.0, True),  # Dymo M10: stable at zero, oz
        (bytes.fromhex("03 03 02 00 90 01"), "motion", 400.0, False),
        (bytes.fromhex("03 05 02 00 00 00"), "underload", None, False),
        (bytes.fromhex("03 06 02 00 00 00"), "overload", None, False),
        (bytes.fromhex("03 01 02 00 00 00"), "error", None, False),  # fault
        (bytes.fromhex("03 07 02 00 00 00"), "error", None, False),  # needs calibration
        (bytes.fromhex("03 08 02 00 00 00"), "error", None, False),  # needs re-zeroing
        (bytes.fromhex("03 04 04 00 10 00"), "error", None, False),  # carats: not a dock's unit
    ],
)
def test_hid_pos_reports(report: bytes, state: str, grams: float | None, stable: bool) -> None:
    (reading,) = three_ways(ReportReader, report, b"\x03\x04")
    assert approx(reading, state, grams, stable), reading


def test_hid_pos_other_reports_are_skipped() -> None:
    assert parse_report(bytes.fromhex("04 00 00 00 00 00")) is None  # a status report, not data
    assert [r.grams for r in ReportReader().feed(bytes.fromhex("04 00 00 00 00 00 03 04 02 00 0a 00"))] == [
        10.0
    ]
    assert parse_report(b"\x03\x04").state == "error"  # a short report names its size


# Stability from N equal readings


def test_stability_from_n_readings_within_tolerance() -> None:
    s = Stabilizer(count=3, tolerance_g=2.0)
    moving = [Reading("motion", g, False, flagged=False) for g in (100.0, 480.0, 951.0, 950.0)]
    assert [s.feed(r).stable for r in moving] == [False, False, False, False]
    settled = s.feed(Reading("motion", 951.5, False, flagged=False))  # 951, 950, 951.5: within 2 g
    assert settled.stable is True and settled.state == "ok"
    assert s.feed(Reading("overload", None, False)).state == "overload"  # a fault starts it over
    assert s.feed(Reading("motion", 951.0, False, flagged=False)).stable is False
    assert s.feed(Reading("ok", 10.0, True)).stable is True  # the scale's own flag is taken as it is
    # a scale that says "in motion" is believed, however alike its readings
    flagged = [s.feed(Reading("motion", 500.0, False)) for _ in range(5)]
    assert [r.stable for r in flagged] == [False] * 5


def test_bare_weight_lines_become_stable_through_the_stabilizer() -> None:
    parser, s = ContinuousParser(), Stabilizer(count=3, tolerance_g=1.0)
    wire = b"  0.100 kg\r\n  0.480 kg\r\n  0.950 kg\r\n  0.950 kg\r\n  0.9505 kg\r\n"
    readings = [s.feed(r) for r in parser.feed(wire)]
    assert [r.stable for r in readings] == [False, False, False, False, True]
    assert readings[-1].grams == 950.5
