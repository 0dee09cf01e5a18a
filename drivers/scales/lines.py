"""Line framing shared by the scale protocols that speak in text lines (MT-SICS, continuous
output). Pure: bytes in, readings out."""

from __future__ import annotations

from collections.abc import Callable

from drivers.scales.reading import Reading


class LineParser:
    """Bytes as they arrive; `feed` returns the reading of every line ended by CR, LF or CR LF
    (`parse_line` returns None for a line that is not a reading: a blank one, an echo). A run
    of more than `max_line` bytes with no end is line noise and is dropped."""

    def __init__(self, parse_line: Callable[[str], Reading | None], max_line: int) -> None:
        self._parse_line = parse_line
        self._max_line = max_line
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Reading]:
        self._buf += data
        out: list[Reading] = []
        while True:
            ends = [i for i in (self._buf.find(b"\r"), self._buf.find(b"\n")) if i >= 0]
            if not ends:
                if len(self._buf) > self._max_line:
                    self._buf.clear()
                return out
            end = min(ends)
            line = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if line:  # the LF of a CR LF ends an empty line
                reading = self._parse_line(line.decode("ascii", "replace"))
                if reading is not None:
                    out.append(reading)

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)
