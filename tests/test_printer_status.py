"""~HS and DLE EOT parsers on the whole answer, one byte at a time, and with trailing bytes."""

from __future__ import annotations

import pytest

from drivers.printers.escpos_status import RealtimeStatusParser, realtime_answer
from drivers.printers.status import StatusParseError
from drivers.printers.zpl_status import HostStatusParser, host_status

ZPL_CASES = [
    ({}, "ready"),
    ({"paper_out": True}, "paper_out"),
    ({"head_open": True}, "head_open"),
    ({"ribbon_out": True}, "ribbon_out"),
    ({"paused": True}, "paused"),
    ({"paper_out": True, "head_open": True}, "head_open"),
]


@pytest.mark.parametrize(("flags", "state"), ZPL_CASES)
def test_zpl_whole_and_byte_by_byte(flags: dict, state: str) -> None:
    answer = host_status(**flags)
    assert HostStatusParser().feed(answer).state == state  # type: ignore[union-attr]
    parser = HostStatusParser()
    results = [parser.feed(answer[i : i + 1]) for i in range(len(answer))]
    assert next(r for r in results if r is not None).state == state
    assert all(r is None for r in results[:-3])  # nothing before the third string is complete


def test_zpl_noise_before_and_trailing_bytes() -> None:
    answer = b"\r\n\x00junk" + host_status(formats=3) + b"\x02trailing"
    status = HostStatusParser().feed(answer)
    assert status is not None and status.state == "ready" and "3 formats" in status.detail


def test_zpl_garbage_frame_raises() -> None:
    with pytest.raises(StatusParseError):
        HostStatusParser().feed(b"\x02hello\x03\x02a,b\x03\x02c\x03")


ESC_CASES = [
    ({}, "ready"),
    ({"paper_out": True}, "paper_out"),
    ({"cover_open": True}, "head_open"),
    ({"error": True}, "error"),
]


@pytest.mark.parametrize(("flags", "state"), ESC_CASES)
def test_escpos_whole_and_byte_by_byte(flags: dict, state: str) -> None:
    answer = b"".join(realtime_answer(n, **flags) for n in (1, 2, 4))
    assert RealtimeStatusParser().feed(answer).state == state  # type: ignore[union-attr]
    parser = RealtimeStatusParser()
    assert parser.feed(answer[:1]) is None and parser.feed(answer[1:2]) is None
    assert parser.feed(answer[2:]).state == state  # type: ignore[union-attr]


def test_escpos_trailing_bytes_after_three_answers_are_not_read() -> None:
    answer = b"".join(realtime_answer(n) for n in (1, 2, 4)) + b"\x12"
    assert RealtimeStatusParser().feed(answer).state == "ready"  # type: ignore[union-attr]


def test_escpos_garbage_raises() -> None:
    with pytest.raises(StatusParseError):
        RealtimeStatusParser().feed(b"\xff")


def test_partial_answers_are_used_when_the_printer_stops_short() -> None:
    esc = RealtimeStatusParser()
    assert esc.finish() is None
    assert esc.feed(realtime_answer(1)) is None
    assert esc.finish().state == "ready"  # type: ignore[union-attr]  # a printer that knows only DLE EOT 1
    offline = RealtimeStatusParser()
    offline.feed(realtime_answer(1, paper_out=True))
    assert offline.finish().state == "offline"  # type: ignore[union-attr]
    zpl = HostStatusParser()
    answer = host_status(paper_out=True)
    first = answer[: answer.index(b"\x03") + 1]
    assert zpl.feed(first) is None
    assert zpl.finish().state == "paper_out"  # type: ignore[union-attr]
    assert HostStatusParser().finish() is None
