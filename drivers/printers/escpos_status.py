"""ESC/POS real-time status (DLE EOT n). Pure: bytes in, status out.

The agent sends DLE EOT 1, DLE EOT 2, DLE EOT 4; the printer answers one byte each, in order.
Every status byte has bits 1 and 4 set and bits 0 and 7 clear (0x12 under mask 0x93).

    n=1 printer:       0x08 offline
    n=2 offline cause: 0x04 cover open, 0x20 stopped by paper end, 0x40 error
    n=4 paper sensor:  0x0C roll near end, 0x60 roll end
"""

from __future__ import annotations

from drivers.printers.status import PrinterStatus, StatusParseError

QUERY = b"\x10\x04\x01\x10\x04\x02\x10\x04\x04"
_FIXED_MASK, _FIXED = 0x93, 0x12


class RealtimeStatusParser:
    def __init__(self) -> None:
        self._bytes = bytearray()

    def feed(self, data: bytes) -> PrinterStatus | None:
        """Bytes of the answers; the status once three are in. Bytes that cannot be status bytes
        (a printer echoing or talking garbage) raise StatusParseError."""
        for b in data:
            if b & _FIXED_MASK != _FIXED:
                raise StatusParseError(f"0x{b:02x} is not an ESC/POS status byte")
            self._bytes.append(b)
            if len(self._bytes) == 3:
                return parse_realtime_status(bytes(self._bytes))
        return None

    def finish(self) -> PrinterStatus | None:
        """The status from fewer answers (a printer that knows only DLE EOT 1, say): what was not
        answered counts as no fault; None if nothing came."""
        if not self._bytes:
            return None
        return parse_realtime_status(bytes(self._bytes) + bytes([_FIXED]) * (3 - len(self._bytes)))


def parse_realtime_status(answer: bytes) -> PrinterStatus:
    printer, offline_cause, paper = answer[0], answer[1], answer[2]
    if offline_cause & 0x04:
        return PrinterStatus("head_open", "cover open")
    if paper & 0x60 or offline_cause & 0x20:
        return PrinterStatus("paper_out", "paper roll end")
    if offline_cause & 0x40:
        return PrinterStatus("error", "printer error")
    if printer & 0x08:
        return PrinterStatus("offline", "printer reports offline")
    if paper & 0x0C:
        return PrinterStatus("ready", "paper roll near end")
    return PrinterStatus("ready", "")


def realtime_answer(
    query_n: int, *, cover_open: bool = False, paper_out: bool = False, error: bool = False
) -> bytes:
    """The byte a printer in this state answers to DLE EOT n (simulator and tests)."""
    value = _FIXED
    if query_n == 1 and (cover_open or paper_out or error):
        value |= 0x08
    elif query_n == 2:
        value |= (0x04 if cover_open else 0) | (0x20 if paper_out else 0) | (0x40 if error else 0)
    elif query_n == 4 and paper_out:
        value |= 0x60
    return bytes([value])
