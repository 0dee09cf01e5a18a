"""The Toledo 8217 "weight only" ECR protocol of scanner-scales (Magellan, NCR RealScan; Mettler
Toledo Ariva "protocol option 3"). Pure: replies in, `Reading`s out.

The host sends one letter with no terminator: `W` asks for the weight. The scale answers
`<STX>` weight `<CR>` when the weight is stable and not negative: `02 "01.234" 0D` (three decimals:
kilograms; two: pounds; a trailing `N` marks a net weight; some scales print the unit instead).
Otherwise it answers a status `<STX> ? <s> <CR>`, the bits of `s` (7 bits, parity stripped):
0 in motion, 1 over capacity, 2 under zero, 3 outside the zero capture range, 4 centre of zero,
5 net, 6 always 1. Serial: 9600 baud, 7 data bits, even parity, 1 stop bit.
"""

from __future__ import annotations

import re

from drivers.scales.reading import Reading, to_grams

WEIGH = b"W"
STX, CR = 0x02, 0x0D
MAX_REPLY = 32
_WEIGHT = re.compile(r"^\s*([0-9]+\.[0-9]+|[0-9]+)\s*(N)?\s*(lb|LB|kg|KG|g|G|oz|OZ)?\s*$")


def parse_reply(body: bytes, unit: str | None = None) -> Reading:
    """One reply between STX and CR. `unit` (`kg`, `lb`) overrides what the decimals say."""
    text = body.decode("ascii", "replace")
    if text.startswith("?"):
        if len(body) < 2:
            return Reading("error", None, False, "status reply without its status byte")
        bits = body[1] & 0x7F
        if bits & 0x02:
            return Reading("overload", None, False, f"status {bits:#04x}: over capacity")
        if bits & 0x04:
            return Reading("underload", None, False, f"status {bits:#04x}: under zero")
        if bits & 0x01:
            return Reading("motion", None, False, f"status {bits:#04x}: in motion")
        if bits & 0x08:
            return Reading("error", None, False, f"status {bits:#04x}: outside the zero capture range")
        return Reading("motion", None, False, f"status {bits:#04x}: no weight")
    m = _WEIGHT.match(text)
    if m is None:
        return Reading("error", None, False, f"{text!r} is not a weight")
    digits, _net, printed = m.groups()
    decimals = len(digits.partition(".")[2])
    chosen = (printed or unit or ("kg" if decimals == 3 else "lb")).lower()
    return Reading("ok", to_grams(float(digits), chosen), True, text.strip())


class Toledo8217Parser:
    """Bytes from the scale as they arrive; `feed` returns a reading per complete reply. Bytes
    outside `<STX>...<CR>` (an echo, noise) are skipped."""

    def __init__(self, unit: str | None = None) -> None:
        self._unit = unit
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Reading]:
        self._buf += bytes(b & 0x7F for b in data)  # 7E1 on an 8N1 port: parity in the top bit
        out: list[Reading] = []
        while True:
            start = self._buf.find(STX)
            if start < 0:
                self._buf.clear()
                return out
            end = self._buf.find(CR, start + 1)
            if end < 0:
                del self._buf[:start]
                if len(self._buf) > MAX_REPLY:
                    del self._buf[:1]  # a lost CR: give up on this STX
                    continue
                return out
            out.append(parse_reply(bytes(self._buf[start + 1 : end]), self._unit))
            del self._buf[: end + 1]

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)
