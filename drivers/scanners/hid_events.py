"""HID scanner key events to text. Pure: bytes and events in, scans out; no I/O, no clock.

Theory of operation
-------------------
A USB scanner in keyboard mode "types" each payload in the keyboard layout it is set for. The
kernel hands us `struct input_event` records; `InputEventParser` cuts a byte stream into them.
`KeyDecoder` is a small state machine over EV_KEY events, with the layout's own state from
libxkbcommon (`xkb.XkbState`: levels, Shift, AltGr, CapsLock, NumLock on) and its Compose table
(`xkb.Composer`: dead keys and sequences), so every layout types here what it types on a desktop:

- every press and release goes to the xkb state; a press yields the text xkb gives for that key,
  passed through the composer; autorepeat (value 2) is ignored;
- Ctrl+] (the key code of `]` on a US keyboard, which scanners send whatever the layout) types
  GS (0x1D); Ctrl with other keys types the control characters xkb gives (Ctrl+M ends the scan);
- Alt held while keypad digits are typed gives the character of that code on Alt release
  (Alt+0029 is GS), as scanners in "Alt mode" send it;
- Enter ends a scan; so does a pause longer than `gap_us` between two keys (scanners set to send
  no terminator), detected from the events' own timestamps or by the driver calling `flush()`.

The xkb state is the decoder's input (state in, text out): it does no I/O and reads no clock.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from drivers.scanners.xkb import Composer, XkbLayout

EV_KEY = 1
KEY_ENTER, KEY_KPENTER = 28, 96
KEY_LEFTSHIFT, KEY_RIGHTSHIFT = 42, 54
KEY_LEFTCTRL, KEY_RIGHTCTRL = 29, 97
KEY_LEFTALT, KEY_RIGHTALT = 56, 100
KEY_CAPSLOCK = 58
KEY_RIGHTBRACE = 27
KEYPAD_DIGITS = {71: "7", 72: "8", 73: "9", 75: "4", 76: "5", 77: "6", 79: "1", 80: "2", 81: "3", 82: "0"}

INPUT_EVENT = struct.Struct("@llHHi")
"""`struct input_event`: timeval (two C longs), type, code, value; 24 bytes on 64-bit Linux."""


@dataclass(frozen=True, slots=True)
class InputEvent:
    sec: int
    usec: int
    type: int
    code: int
    value: int

    @property
    def time_us(self) -> int:
        return self.sec * 1_000_000 + self.usec

    def pack(self) -> bytes:
        return INPUT_EVENT.pack(self.sec, self.usec, self.type, self.code, self.value)


class InputEventParser:
    """Cuts a byte stream into `InputEvent`s, keeping a partial record for the next feed."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[InputEvent]:
        buf = self._buf + data
        size = INPUT_EVENT.size
        whole = len(buf) - len(buf) % size
        self._buf = buf[whole:]
        return [InputEvent(*fields) for fields in INPUT_EVENT.iter_unpack(buf[:whole])]


class KeyDecoder:
    def __init__(self, layout: XkbLayout, gap_us: int = 100_000) -> None:
        self._layout = layout
        self._gap_us = gap_us
        self._state = layout.new_state()
        self._composer = Composer()
        self._text: list[str] = []
        self._ctrl: set[int] = set()
        self._alt = False
        self._alt_digits = ""
        self._last_us: int | None = None

    @property
    def pending(self) -> bool:
        """True when characters of an unfinished scan are held."""
        return bool(self._text) or self._composer.pending

    def flush(self) -> str | None:
        """End the scan in progress (the inter-key gap passed); its text, or None if there is none."""
        self._composer.reset()
        if not self._text:
            return None
        text = "".join(self._text)
        self._text.clear()
        return text

    def feed(self, event: InputEvent) -> list[str]:
        """Feed one event; returns the scans it completed (usually none, at most two)."""
        if event.type != EV_KEY or event.value == 2:  # autorepeat types nothing more
            return []
        done: list[str] = []
        code, value = event.code, event.value
        if value == 1 and self._last_us is not None and event.time_us - self._last_us > self._gap_us:
            previous = self.flush()
            if previous is not None:
                done.append(previous)
        self._last_us = event.time_us
        if value == 0:
            self._release(code)
            return done
        text, sym = self._state.press(code)
        if code in (KEY_LEFTCTRL, KEY_RIGHTCTRL):
            self._ctrl.add(code)
        elif code == KEY_LEFTALT:
            self._alt = True
        if code in (KEY_ENTER, KEY_KPENTER):
            self._end(done)
        elif self._alt and code in KEYPAD_DIGITS:
            self._alt_digits += KEYPAD_DIGITS[code]
        elif self._ctrl:
            control = "\x1d" if code == KEY_RIGHTBRACE else text if len(text) == 1 and text < " " else ""
            if control in ("\r", "\n"):
                self._end(done)
            elif control:
                self._text.append(control)
        else:
            typed = self._composer.feed(sym, text)
            if typed:
                self._text.append(typed)
        return done

    def _release(self, code: int) -> None:
        self._state.release(code)
        if code in (KEY_LEFTCTRL, KEY_RIGHTCTRL):
            self._ctrl.discard(code)
        elif code == KEY_LEFTALT:
            self._alt = False
            if self._alt_digits:
                self._emit_alt_code(self._alt_digits)
                self._alt_digits = ""

    def _end(self, done: list[str]) -> None:
        text = self.flush()
        if text is not None:
            done.append(text)

    def _emit_alt_code(self, digits: str) -> None:
        number = int(digits)
        if number <= 0:
            return
        if number < 256:
            self._text.append(
                bytes([number]).decode("cp1252" if digits.startswith("0") else "cp437", "replace")
            )
        elif number <= 0x10FFFF:
            self._text.append(chr(number))


def encode_text(layout: XkbLayout, text: str, t0_us: int = 0, step_us: int = 2000) -> list[InputEvent]:
    """Key events that type `text` followed by Enter on `layout` (the inverse of `KeyDecoder`).

    GS is typed as Ctrl+]. Characters the layout cannot type raise ValueError. Used by the HID
    simulator and by tests.
    """
    events: list[InputEvent] = []
    t = t0_us

    def key(code: int, value: int) -> None:
        nonlocal t
        events.append(InputEvent(t // 1_000_000, t % 1_000_000, EV_KEY, code, value))
        events.append(InputEvent(t // 1_000_000, t % 1_000_000, 0, 0, 0))  # SYN_REPORT
        t += step_us

    for ch in text:
        if ch == "\x1d":
            key(KEY_LEFTCTRL, 1)
            key(KEY_RIGHTBRACE, 1)
            key(KEY_RIGHTBRACE, 0)
            key(KEY_LEFTCTRL, 0)
            continue
        strokes = layout.keystrokes(ch)
        if strokes is None:
            raise ValueError(f"{ch!r} cannot be typed on the {layout.name} layout")
        for code, shift, altgr in strokes:
            if shift:
                key(KEY_LEFTSHIFT, 1)
            if altgr:
                key(KEY_RIGHTALT, 1)
            key(code, 1)
            key(code, 0)
            if altgr:
                key(KEY_RIGHTALT, 0)
            if shift:
                key(KEY_LEFTSHIFT, 0)
    key(KEY_ENTER, 1)
    key(KEY_ENTER, 0)
    return events
