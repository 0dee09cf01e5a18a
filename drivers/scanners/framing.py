"""Serial scanner framing: bytes in, frames out. Pure: no I/O, no clock, no logging.

A frame ends at CR, LF or CRLF (a CRLF split across two reads is still one terminator), or at
the configured suffix. Frames longer than `max_len` and frames with control bytes a barcode
cannot carry are reported as noise instead of payloads.
"""

from __future__ import annotations

from dataclasses import dataclass

# Control bytes a scanned payload may legitimately hold: TAB, EOT, FS, GS, RS (ISO 15434).
_ALLOWED_CONTROLS = frozenset(b"\x04\x09\x1c\x1d\x1e")
_BAD_BYTES = bytes(b for b in range(256) if (b < 0x20 and b not in _ALLOWED_CONTROLS) or b == 0x7F)


@dataclass(frozen=True, slots=True)
class Frame:
    data: bytes
    noise: str | None = None
    """Why this frame is line noise rather than a payload; None for a payload."""


class LineFramer:
    def __init__(self, prefix: bytes = b"", suffix: bytes = b"", max_len: int = 4096) -> None:
        self._prefix = prefix
        self._suffix = suffix
        self._max_len = max_len
        self._buf = bytearray()
        self._skip_lf = False
        self._overlong = False

    @property
    def pending(self) -> bytes:
        """Bytes of a frame not yet ended."""
        return bytes(self._buf)

    def reset(self) -> bytes:
        """Forget a partial frame (the port closed); returns what was dropped."""
        dropped = bytes(self._buf)
        self._buf.clear()
        self._skip_lf = False
        self._overlong = False
        return dropped

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        if self._skip_lf and data[:1] == b"\n":
            data = data[1:]
        if data:
            self._skip_lf = False
        self._buf += data
        while True:
            end, term_len = self._find_terminator()
            if end < 0:
                break
            body = bytes(self._buf[:end])
            terminator = bytes(self._buf[end : end + term_len])
            del self._buf[: end + term_len]
            if terminator == b"\r":
                if self._buf[:1] == b"\n":
                    del self._buf[:1]
                elif not self._buf:
                    self._skip_lf = True
            frame = self._finish(body)
            if frame is not None:
                frames.append(frame)
        if len(self._buf) > self._max_len and not self._overlong:
            self._overlong = True
            frames.append(Frame(bytes(self._buf[:64]), f"frame longer than {self._max_len} bytes"))
        if self._overlong:
            self._buf.clear()
        return frames

    def _find_terminator(self) -> tuple[int, int]:
        best, length = -1, 0
        for term in (b"\r", b"\n", self._suffix):
            if not term:
                continue
            i = self._buf.find(term)
            if i >= 0 and (best < 0 or i < best):
                best, length = i, len(term)
        return best, length

    def _finish(self, body: bytes) -> Frame | None:
        if self._overlong:
            self._overlong = False
            return None  # the tail of a frame already reported as too long
        if self._suffix and body.endswith(self._suffix):
            body = body[: -len(self._suffix)]
        if not body:
            return None
        if self._prefix:
            if not body.startswith(self._prefix):
                return Frame(body, "frame does not start with the configured prefix")
            body = body[len(self._prefix) :]
        if len(body) > self._max_len:
            return Frame(body[:64], f"frame longer than {self._max_len} bytes")
        bad = _first_bad_byte(body)
        if bad is not None:
            return Frame(body, f"control byte 0x{body[bad]:02x} at position {bad}")
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Frame(body, f"not UTF-8 text at byte {exc.start}")
        return Frame(body)


def _first_bad_byte(body: bytes) -> int | None:
    if len(body.translate(None, _BAD_BYTES)) == len(body):
        return None
    for i, b in enumerate(body):
        if b in _BAD_BYTES:
            return i
    return None
