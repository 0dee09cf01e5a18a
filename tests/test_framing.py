"""The serial framer on the whole buffer, one byte at a time, and with trailing bytes."""

from __future__ import annotations

import pytest

from drivers.scanners.framing import Frame, LineFramer

STREAM = b"RR123456785SE\r\n]C100376104250021234569\x1d42000180\rCMD:MODE:INSPECT\nlast\r\n"
EXPECTED = [b"RR123456785SE", b"]C100376104250021234569\x1d42000180", b"CMD:MODE:INSPECT", b"last"]


def payloads(frames: list[Frame]) -> list[bytes]:
    return [f.data for f in frames if f.noise is None]


def test_whole_buffer() -> None:
    assert payloads(LineFramer().feed(STREAM)) == EXPECTED


def test_one_byte_at_a_time() -> None:
    framer = LineFramer()
    out: list[Frame] = []
    for i in range(len(STREAM)):
        out += framer.feed(STREAM[i : i + 1])
    assert payloads(out) == EXPECTED
    assert all(f.noise is None for f in out)  # a CRLF split across reads is one terminator


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_every_split_point(cut: int) -> None:
    framer = LineFramer()
    assert payloads(framer.feed(STREAM[:cut]) + framer.feed(STREAM[cut:])) == EXPECTED


def test_trailing_bytes_wait_for_their_terminator() -> None:
    framer = LineFramer()
    assert payloads(framer.feed(STREAM + b"RR9999")) == EXPECTED
    assert framer.pending == b"RR9999"
    assert payloads(framer.feed(b"\r")) == [b"RR9999"]


def test_reset_drops_a_partial_frame() -> None:
    framer = LineFramer()
    framer.feed(b"half-a-fra")
    assert framer.reset() == b"half-a-fra"
    assert payloads(framer.feed(b"whole\r\n")) == [b"whole"]


def test_empty_lines_are_not_payloads() -> None:
    assert LineFramer().feed(b"\r\n\r\n\n\r") == []


def test_line_noise_is_reported_not_passed_on() -> None:
    frames = LineFramer().feed(b"\x00\xff\x07\rOK\r\n")
    assert [f.noise is not None for f in frames] == [True, False]
    assert frames[1].data == b"OK"
    assert "0x00" in (frames[0].noise or "")


def test_gs_rs_eot_are_payload_bytes() -> None:
    assert payloads(LineFramer().feed(b"[)>\x1e06\x1dX\x1e\x04\r")) == [b"[)>\x1e06\x1dX\x1e\x04"]


def test_invalid_utf8_is_noise() -> None:
    frames = LineFramer().feed(b"abc\xc3\r")
    assert frames[0].noise is not None


def test_overlong_frame_is_dropped_once_and_framing_recovers() -> None:
    framer = LineFramer(max_len=16)
    frames = framer.feed(b"x" * 40)
    frames += framer.feed(b"y" * 40 + b"\r\nnext\r\n")
    assert [f.noise is not None for f in frames] == [True, False]
    assert frames[-1].data == b"next"


def test_prefix_and_suffix() -> None:
    framer = LineFramer(prefix=b"\x02", suffix=b"\x03")
    stream = b"\x02ABC\x03\x02DEF\x03\r\n"
    one_by_one: list[Frame] = []
    for i in range(len(stream)):
        one_by_one += framer.feed(stream[i : i + 1])
    assert payloads(one_by_one) == [b"ABC", b"DEF"]
    frames = LineFramer(prefix=b"\x02", suffix=b"\x03").feed(b"NOPREFIX\x03")
    assert frames[0].noise == "frame does not start with the configured prefix"
