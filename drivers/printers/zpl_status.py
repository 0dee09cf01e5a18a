"""Zebra `~HS` (host status) responses. Pure: bytes in, status out.

The printer answers with three strings, each framed by STX (0x02) and ETX (0x03) and usually
followed by CR LF:

    1: aaa,b,c,dddd,eee,f,g,h,iii,j,k,l     b paper out, c paused, f buffer full, k/l under/over temperature
    2: mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www     o head open, p ribbon out
    3: xxxx,y

`HostStatusParser.feed()` takes bytes as they arrive and returns the status once all three
strings are in; anything outside the frames (noise, CR LF) is skipped.
"""

from __future__ import annotations

from drivers.printers.status import PrinterStatus, StatusParseError

STX, ETX = 0x02, 0x03
QUERY = b"~HS"


class HostStatusParser:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._frames: list[bytes] = []

    def feed(self, data: bytes) -> PrinterStatus | None:
        """Bytes of the answer; the status when the third string is complete, else None.
        Raises StatusParseError when a frame is not a ~HS string."""
        self._buf += data
        while len(self._frames) < 3:
            start = self._buf.find(STX)
            if start < 0:
                self._buf.clear()
                return None
            end = self._buf.find(ETX, start + 1)
            if end < 0:
                del self._buf[:start]
                return None
            self._frames.append(bytes(self._buf[start + 1 : end]))
            del self._buf[: end + 1]
        return parse_host_status(self._frames)

    def finish(self) -> PrinterStatus | None:
        """The status from what arrived when the printer stopped short of three strings (some
        send only the first two); None if not even the first is complete."""
        if not self._frames:
            return None
        frames = [*self._frames, *_DEFAULT_FRAMES[len(self._frames) :]]
        return parse_host_status(frames)


_DEFAULT_FRAMES = [b"", b"000,0,0,0,0,0,0,0,00000000,0,000", b"0000,0"]


def _fields(frame: bytes, count: int, which: int) -> list[str]:
    try:
        text = frame.decode("ascii")
    except UnicodeDecodeError:
        raise StatusParseError(f"~HS string {which} is not ASCII") from None
    fields = text.split(",")
    if len(fields) < count or not all(f.strip().isdigit() for f in fields[:count]):
        raise StatusParseError(f"~HS string {which} is not {count} numeric fields: {text[:40]!r}")
    return [f.strip() for f in fields]


def parse_host_status(frames: list[bytes]) -> PrinterStatus:
    one = _fields(frames[0], 12, 1)
    two = _fields(frames[1], 11, 2)
    paper_out, paused, buffer_full = one[1] == "1", one[2] == "1", one[5] == "1"
    under_temp, over_temp, corrupt_ram = one[10] == "1", one[11] == "1", one[9] == "1"
    head_open, ribbon_out = two[2] == "1", two[3] == "1"
    if head_open:
        return PrinterStatus("head_open", "print head is open")
    if paper_out:
        return PrinterStatus("paper_out", "media out")
    if ribbon_out:
        return PrinterStatus("ribbon_out", "ribbon out")
    if over_temp or under_temp or corrupt_ram:
        what = "over temperature" if over_temp else "under temperature" if under_temp else "corrupt RAM"
        return PrinterStatus("error", what)
    if paused:
        return PrinterStatus("paused", "printer is paused")
    detail = f"{int(one[4])} formats in buffer" + (", buffer full" if buffer_full else "")
    return PrinterStatus("ready", detail)


def host_status(
    *, paper_out: bool = False, paused: bool = False, head_open: bool = False, ribbon_out: bool = False,
    formats: int = 0,
) -> bytes:  # fmt: skip
    """The ~HS answer a printer in this state sends (used by the printer simulator and tests)."""
    one = f"030,{int(paper_out)},{int(paused)},1234,{formats:03d},0,0,0,000,0,0,0"
    two = f"001,0,{int(head_open)},{int(ribbon_out)},0,2,6,0,00000000,1,000"
    three = "1234,0"
    return b"".join(b"\x02" + s.encode() + b"\x03\r\n" for s in (one, two, three))
