"""USB HID POS scanned-data reports (usage page 0x8C) to payloads. Pure: bytes in, payloads out.

Theory of operation
-------------------
A scanner in HID POS mode sends each barcode as one or more input reports of a fixed size. A
report holds a byte count, the AIM symbology identifier (three bytes, `]C1`), up to N data bytes
and a "more follows" bit; a long barcode spans reports until one arrives with that bit clear.
`ReportLayout` says where those fields are: read from the device's report descriptor
(`layout_from_descriptor`, which finds usages 0xFB-0xFF of page 0x8C) or, when the descriptor
cannot be read or names none of them, Honeywell's layout (`HONEYWELL`, reference/hid-pos.md).
`ScanAssembler` takes whole reports (hidraw returns one per read) and yields each finished
payload: the AIM identifier followed by the data, so the decoder sees exactly what a serial
scanner would send; reports of another id and empty reports are ignored. `ReportSplitter` cuts a
byte stream (a FIFO in simulation) into reports of the layout's size.
"""

from __future__ import annotations

from dataclasses import dataclass

USAGE_PAGE_POS = 0x8C
USAGE_SYMBOLOGY_IDS = (0xFB, 0xFC, 0xFD)
USAGE_DECODED_DATA = 0xFE
USAGE_DATA_CONTINUED = 0xFF


@dataclass(frozen=True, slots=True)
class ReportLayout:
    report_id: int | None
    """First byte of every report when the device numbers its reports; None when it does not."""
    size: int
    """Bytes per report as read from hidraw (the report id included)."""
    length_at: int | None
    """Offset of the byte count of this report's data; None: data runs to its first NUL."""
    aim_at: int | None
    """Offset of the three AIM symbology identifier bytes; None when the report carries none."""
    data_at: int
    data_size: int
    continued_at: tuple[int, int] | None
    """(byte offset, bit) of the "more data follows" flag; None: every report is a whole payload."""


HONEYWELL = ReportLayout(
    report_id=0x02,
    size=64,
    length_at=1,
    aim_at=2,
    data_at=5,
    data_size=56,
    continued_at=(63, 0),
)
"""Honeywell's scanned-data report (reference/hid-pos.md), which most vendors follow."""


class ScanAssembler:
    """Whole reports in, payloads (AIM identifier + data) out."""

    def __init__(self, layout: ReportLayout = HONEYWELL, max_bytes: int = 64 * 1024) -> None:
        self.layout = layout
        self._parts: list[bytes] = []
        self._aim = b""
        self._held = 0
        self._max = max_bytes
        self.ignored = 0
        """Reports that were not scanned data (another report id, empty, too short)."""

    @property
    def pending(self) -> bool:
        return bool(self._parts)

    def feed(self, report: bytes) -> bytes | None:
        """One report; the finished payload when this report ends one, else None."""
        lay = self.layout
        if lay.report_id is not None and (not report or report[0] != lay.report_id):
            self.ignored += 1
            return None
        end_of_data = lay.data_at + lay.data_size
        if len(report) < lay.data_at + 1:
            self.ignored += 1
            return None
        if lay.length_at is not None:
            count = min(report[lay.length_at], lay.data_size)
            data = report[lay.data_at : lay.data_at + count]
        else:
            data = report[lay.data_at : end_of_data].split(b"\x00", 1)[0]
        more = False
        if lay.continued_at is not None and len(report) > lay.continued_at[0]:
            byte, bit = lay.continued_at
            more = bool(report[byte] >> bit & 1)
        if not data and not more:
            self.ignored += 1  # an empty report (some scanners send one after each scan)
            return None
        if not self._parts and lay.aim_at is not None:
            aim = report[lay.aim_at : lay.aim_at + 3]
            self._aim = aim if len(aim) == 3 and aim[:1] == b"]" else b""
        if self._held + len(data) <= self._max:  # a runaway "more follows" cannot grow memory
            self._parts.append(data)
            self._held += len(data)
        return None if more else self._take()

    def flush(self) -> bytes | None:
        """A payload cut short (the scanner was unplugged mid-barcode): its bytes, dropped here."""
        return self._take() if self._parts else None

    def _take(self) -> bytes:
        payload = self._aim + b"".join(self._parts)
        self._parts.clear()
        self._held = 0
        self._aim = b""
        return payload


class ReportSplitter:
    """A byte stream in, whole reports of `size` bytes out; a partial report waits for the rest."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data
        whole = len(buf) - len(buf) % self._size
        self._buf = buf[whole:]
        return [buf[i : i + self._size] for i in range(0, whole, self._size)]


# Report descriptor: short items `prefix [data]`, prefix = tag(4) type(2) size(2); 0xFE long items.
_MAIN, _GLOBAL, _LOCAL = 0, 1, 2
_INPUT = 0x8
_USAGE_PAGE, _REPORT_SIZE, _REPORT_ID, _REPORT_COUNT = 0x0, 0x7, 0x8, 0x9
_USAGE, _USAGE_MIN, _USAGE_MAX = 0x0, 0x1, 0x2


@dataclass(slots=True)
class _Field:
    report_id: int
    bit: int
    size: int
    usage: int
    """(page << 16) | id"""


def parse_descriptor(desc: bytes) -> list[_Field]:
    """Every input field of a report descriptor, one per report count, with its bit offset in
    its report (after the report id byte)."""
    fields: list[_Field] = []
    page = size = count = report_id = 0
    usages: list[int] = []
    usage_min: int | None = None
    offsets: dict[int, int] = {}
    i = 0
    while i < len(desc):
        prefix = desc[i]
        if prefix == 0xFE:  # long item: size, tag, data
            if i + 1 >= len(desc):
                break
            i += 3 + desc[i + 1]
            continue
        n = (0, 1, 2, 4)[prefix & 3]
        kind, tag = (prefix >> 2) & 3, prefix >> 4
        value = int.from_bytes(desc[i + 1 : i + 1 + n], "little")
        i += 1 + n
        if kind == _GLOBAL:
            if tag == _USAGE_PAGE:
                page = value
            elif tag == _REPORT_SIZE:
                size = value
            elif tag == _REPORT_ID:
                report_id = value
            elif tag == _REPORT_COUNT:
                count = value
        elif kind == _LOCAL:
            full = value if n == 4 else (page << 16) | value
            if tag == _USAGE:
                usages.append(full)
            elif tag == _USAGE_MIN:
                usage_min = full
            elif tag == _USAGE_MAX and usage_min is not None:
                usages.extend(range(usage_min, full + 1))
                usage_min = None
        elif kind == _MAIN:
            if tag == _INPUT:
                bit = offsets.get(report_id, 0)
                for k in range(count):
                    usage = usages[min(k, len(usages) - 1)] if usages else 0
                    fields.append(_Field(report_id, bit + k * size, size, usage))
                offsets[report_id] = bit + count * size
            usages = []
            usage_min = None
    return fields


def layout_from_descriptor(desc: bytes) -> ReportLayout | None:
    """The scanned-data report's layout from a report descriptor, or None when it has no decoded
    data usage (0x8C:0xFE) with byte-sized fields."""
    try:
        fields = parse_descriptor(desc)
    except (IndexError, ValueError):
        return None
    pos = USAGE_PAGE_POS << 16
    data = [f for f in fields if f.usage == pos | USAGE_DECODED_DATA and f.size == 8]
    if not data:
        return None
    rid = data[0].report_id
    mine = [f for f in fields if f.report_id == rid]
    head = 1 if rid else 0
    aim = [f for f in mine if f.usage in {pos | u for u in USAGE_SYMBOLOGY_IDS} and f.size == 8]
    first = min(f.bit for f in (aim or data))
    before = [f for f in mine if f.size == 8 and f.bit == first - 8]
    cont = [f for f in mine if f.usage == pos | USAGE_DATA_CONTINUED]
    total_bits = max(f.bit + f.size for f in mine)
    return ReportLayout(
        report_id=rid or None,
        size=head + (total_bits + 7) // 8,
        length_at=head + before[0].bit // 8 if before else None,
        aim_at=head + min(f.bit for f in aim) // 8 if len(aim) == 3 else None,
        data_at=head + data[0].bit // 8,
        data_size=len(data),
        continued_at=(head + cont[0].bit // 8, cont[0].bit % 8) if cont else None,
    )


def make_reports(payload: bytes, layout: ReportLayout = HONEYWELL, aim: bytes = b"") -> list[bytes]:
    """Reports that carry `payload` with symbology identifier `aim` (the inverse of
    `ScanAssembler`); used by the simulator and tests."""
    chunks = [payload[i : i + layout.data_size] for i in range(0, len(payload), layout.data_size)] or [b""]
    reports = []
    for n, chunk in enumerate(chunks):
        report = bytearray(layout.size)
        if layout.report_id is not None:
            report[0] = layout.report_id
        if layout.length_at is not None:
            report[layout.length_at] = len(chunk)
        if layout.aim_at is not None and aim:
            report[layout.aim_at : layout.aim_at + 3] = aim[:3]
        report[layout.data_at : layout.data_at + len(chunk)] = chunk
        if layout.continued_at is not None and n < len(chunks) - 1:
            byte, bit = layout.continued_at
            report[byte] |= 1 << bit
        reports.append(bytes(report))
    return reports
