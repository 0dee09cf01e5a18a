"""ISO/IEC 15434 envelopes (labels.md kind 3; reference/iso15434.md). Pure: text in, model out.

    [)> RS  01 GS 96<postal> GS ... RS  06 GS 1TF17L715034 GS ... RS  EOT

`parse_envelope` reads one message from the start of a payload and says where it ended;
`Reader` takes bytes as they arrive (a byte at a time if need be) and hands out each message once
its EOT is in, keeping what follows for the next one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from edge_agent.decode import gs1
from edge_agent.decode.tracking import formats as tracking_formats

HEADER = "[)>"
RS, GS, EOT = "\x1e", "\x1d", "\x04"
_DI = re.compile(r"[0-9]{0,3}[A-Z]")
_LICENSE_PLATE_DIS = ("J", "1J", "2J", "5J", "6J")
_UPS_SCAC = "UPSN"
_FEDEX_SCACS = frozenset({"FDE", "FDEG", "FDX", "FDXG", "FXFE"})


@dataclass(slots=True)
class Format:
    format: str
    position: int
    fields: list[Any] = field(default_factory=list)
    header: str | None = None
    gs1: dict[str, str] | None = None
    carrier: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format}
        if self.format == "05":
            out["gs1"] = self.gs1 or {}
            return out
        if self.header is not None:
            out["header"] = self.header
        out["fields"] = self.fields
        if self.carrier is not None:
            out["carrier"] = self.carrier
        return out


@dataclass(slots=True)
class Envelope:
    formats: list[Format]
    error: str | None
    keys: dict[str, str]

    @property
    def valid(self) -> bool:
        return self.error is None

    def detail(self) -> dict[str, Any]:
        return {"formats": [f.to_dict() for f in self.formats]}


class _Malformed(Exception):
    pass


def is_envelope(text: str) -> bool:
    return text.startswith(HEADER)


def parse_envelope(text: str) -> tuple[Envelope, int]:
    """One message from the start of `text` (which starts with `[)>`): the envelope, and the
    index just past its EOT (or the end of `text` when it has no EOT). Never raises."""
    formats: list[Format] = []
    keys: dict[str, str] = {}
    error: str | None = None
    pos = len(HEADER)
    try:
        if text[pos : pos + 1] != RS:
            raise _Malformed(f"ISO/IEC 15434: no RS after '[)>' (position {pos})")
        pos += 1
        while pos < len(text) and text[pos] != EOT:
            fmt, pos = _format(text, pos)
            formats.append(fmt)
        if pos < len(text):
            pos += 1  # the EOT
        if not formats:
            raise _Malformed(f"ISO/IEC 15434: the envelope holds no format (position {pos})")
    except _Malformed as exc:
        error = str(exc)
        pos = len(text)
    for fmt in formats:
        problem = _interpret(fmt, keys)
        error = error or problem
    return Envelope(formats, error, keys if error is None else {}), pos


def _format(text: str, pos: int) -> tuple[Format, int]:
    indicator = text[pos : pos + 2]
    if len(indicator) < 2 or not indicator.isalnum():
        raise _Malformed(f"ISO/IEC 15434: format indicator expected at position {pos}, found {indicator!r}")
    end = text.find(RS, pos + 2)
    if end < 0:
        raise _Malformed(f"ISO/IEC 15434: format {indicator} at position {pos} is not ended by RS")
    body = text[pos + 2 : end]
    fmt = Format(indicator, pos)
    if body.startswith(GS):
        body = body[1:]
    elif indicator in ("01", "05", "06", "12"):
        raise _Malformed(f"ISO/IEC 15434: no GS after format indicator {indicator} (position {pos + 2})")
    if indicator == "05":
        fmt.fields = [body]
    elif indicator == "06":
        fmt.fields = _data_identifiers(body, pos + 3)
    else:
        fmt.fields = body.split(GS)
        if indicator == "01" and fmt.fields:
            fmt.header, fmt.fields[0] = fmt.fields[0][:2], fmt.fields[0][2:]
    return fmt, end + 1


def _data_identifiers(body: str, start: int) -> list[list[str]]:
    out: list[list[str]] = []
    at = start
    for part in body.split(GS):
        if part:
            m = _DI.match(part)
            if m is None:
                raise _Malformed(
                    f"ISO/IEC 15434: format 06 field at position {at} has no data identifier ({part[:12]!r})"
                )
            out.append([m.group(), part[m.end() :]])
        at += len(part) + 1
    return out


def _interpret(fmt: Format, keys: dict[str, str]) -> str | None:
    """Fill the format's typed parts and the keys; the error found, if any."""
    if fmt.format == "05":
        result = gs1.decode_gs1(fmt.fields[0])
        fmt.gs1 = result.ais
        for name in ("sscc", "gtin"):
            if name in result.keys:
                keys.setdefault(name, result.keys[name])
        return None if result.valid else f"ISO/IEC 15434 format 05 (position {fmt.position}): {result.error}"
    if fmt.format == "06":
        for di, value in fmt.fields:
            if di == "K":
                keys.setdefault("order_number", value)
            elif di in _LICENSE_PLATE_DIS:
                keys.setdefault("license_plate", value)
        return None
    if fmt.format == "01":
        return _carrier(fmt, keys)
    return None


def _carrier(fmt: Format, keys: dict[str, str]) -> str | None:
    f = fmt.fields
    if len(f) < 5:
        return None
    scac = f[4].strip()
    if scac == _UPS_SCAC or (fmt.header == "96" and f[3].startswith("1Z")):
        number, courier = _ups_number(f), "ups"
    elif scac in _FEDEX_SCACS or fmt.header == "02":
        digits = f[3].strip()
        number, courier = digits[:12], "fedex"
    else:
        return None
    fmt.carrier = {
        "scac": scac,
        "tracking_number": number,
        "postal_code": f[0],
        "country": f[1],
        "service": f[2],
    }
    if not _carrier_check(courier, number):
        return (
            f"ISO/IEC 15434 format 01 (position {fmt.position}): {courier.upper()} tracking number "
            f"{number!r} fails its check digit"
        )
    keys.setdefault("tracking_number", number)
    return None


def _ups_number(f: list[str]) -> str:
    """The printed 1Z number: MaxiCode carries `1Z` + 7 digits of the package reference + check
    digit; the shipper number (field 5) and the class of service's last two digits go between."""
    short = f[3].strip()
    if len(short) == 18:
        return short
    shipper = f[5].strip() if len(f) > 5 else ""
    return "1Z" + shipper + f[2].strip()[-2:] + short[2:]


def _carrier_check(courier: str, number: str) -> bool:
    wanted = "ups" if courier == "ups" else "fedex_12"
    for fmt in tracking_formats():
        if fmt.id == wanted:
            result = fmt.evaluate_compact(number)
            return result is not None and result.valid
    return False


class Reader:
    """Bytes in, envelopes out: messages split across reads are put together, bytes before `[)>`
    are skipped, bytes after a message's EOT wait for the next one."""

    def __init__(self, max_bytes: int = 64 * 1024) -> None:
        self._buffer = bytearray()
        self._max = max_bytes

    def receive_data(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > self._max:
            del self._buffer[: len(self._buffer) - self._max]

    def next_envelope(self) -> Envelope | None:
        """The next whole message, or None until more bytes arrive."""
        start = self._buffer.find(HEADER.encode())
        if start < 0:
            keep = 2  # a header split across reads
            del self._buffer[: max(0, len(self._buffer) - keep)]
            return None
        end = self._buffer.find(EOT.encode(), start)
        if end < 0:
            del self._buffer[:start]
            return None
        message = bytes(self._buffer[start : end + 1]).decode("utf-8", "replace")
        del self._buffer[: end + 1]
        envelope, _ = parse_envelope(message)
        return envelope
