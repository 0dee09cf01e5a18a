"""HID scanner key events to text. Pure: bytes and events in, scans out; no I/O, no clock.

Theory of operation
-------------------
A USB scanner in keyboard mode "types" each payload. The kernel hands us `struct input_event`
records; `InputEventParser` cuts a byte stream into them. `KeyDecoder` is a small state machine
over EV_KEY events:

- modifiers (Shift, AltGr, Ctrl, Alt, CapsLock) change state on press and release;
- a key press (value 1) produces the keymap's character for the current modifiers; autorepeat
  (value 2) and releases of ordinary keys produce nothing;
- a dead key (´ ¨ ^ ` ~ on some layouts) waits for the next character and composes with it;
- Ctrl+] (the key code of `]` on a US keyboard, which scanners send whatever the layout) and
  Ctrl+@..Ctrl+_ give the ASCII control characters, so GS (0x1D) can be typed;
- Alt held while keypad digits are typed gives the character of that code on Alt release
  (Alt+0029 is GS);
- Enter ends a scan; so does a pause longer than `gap_us` between two keys (scanners set to send
  no terminator), detected from the events' own timestamps or by the driver calling `flush()`.
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass

from drivers.scanners.keymaps import COMBINING, KEYPAD_DIGITS, Keymap

EV_KEY = 1
KEY_ENTER, KEY_KPENTER = 28, 96
KEY_LEFTSHIFT, KEY_RIGHTSHIFT = 42, 54
KEY_LEFTCTRL, KEY_RIGHTCTRL = 29, 97
KEY_LEFTALT, KEY_RIGHTALT = 56, 100
KEY_CAPSLOCK = 58
KEY_RIGHTBRACE = 27

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
    def __init__(self, keymap: Keymap, gap_us: int = 100_000) -> None:
        self._keymap = keymap
        self._gap_us = gap_us
        self._text: list[str] = []
        self._shift: set[int] = set()
        self._ctrl: set[int] = set()
        self._alt = False
        self._altgr = False
        self._caps = False
        self._dead: str | None = None
        self._alt_digits = ""
        self._last_us: int | None = None

    @property
    def pending(self) -> bool:
        """True when characters of an unfinished scan are held."""
        return bool(self._text) or self._dead is not None

    def flush(self) -> str | None:
        """End the scan in progress (the inter-key gap passed); its text, or None if there is none."""
        if self._dead is not None:
            self._text.append(self._dead)
            self._dead = None
        if not self._text:
            return None
        text = "".join(self._text)
        self._text.clear()
        return text

    def feed(self, event: InputEvent) -> list[str]:
        """Feed one event; returns the scans it completed (usually none, at most two)."""
        if event.type != EV_KEY:
            return []
        done: list[str] = []
        code, value = event.code, event.value
        if value == 1 and self._last_us is not None and event.time_us - self._last_us > self._gap_us:
            previous = self.flush()
            if previous is not None:
                done.append(previous)
        if value != 2:
            self._last_us = event.time_us
        if self._modifier(code, value):
            return done
        if value != 1:
            return done  # key release or autorepeat
        if code in (KEY_ENTER, KEY_KPENTER):
            text = self.flush()
            if text is not None:
                done.append(text)
            return done
        if self._alt and code in KEYPAD_DIGITS:
            self._alt_digits += KEYPAD_DIGITS[code]
            return done
        shift = bool(self._shift)
        ch, dead = self._keymap.char(code, shift, self._altgr)
        if self._ctrl:
            control = _control_char(ch, code)
            if control is None:
                return done
            if control in "\r\n":
                text = self.flush()
                if text is not None:
                    done.append(text)
                return done
            self._emit(control)
            return done
        if not ch:
            return done
        if self._caps and ch.isalpha():
            ch = ch.lower() if shift else ch.upper()
        if dead:
            if self._dead is not None:
                pending, self._dead = self._dead, None
                self._text.append(pending)
                if pending == ch:
                    return done  # the same dead key twice types the accent once
            self._dead = ch
            return done
        self._emit(ch)
        return done

    def _modifier(self, code: int, value: int) -> bool:
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            (self._shift.add if value else self._shift.discard)(code)
        elif code in (KEY_LEFTCTRL, KEY_RIGHTCTRL):
            (self._ctrl.add if value else self._ctrl.discard)(code)
        elif code == KEY_RIGHTALT:
            self._altgr = value != 0
        elif code == KEY_LEFTALT:
            if value == 0 and self._alt_digits:
                self._emit_alt_code(self._alt_digits)
                self._alt_digits = ""
            self._alt = value != 0
        elif code == KEY_CAPSLOCK:
            if value == 1:
                self._caps = not self._caps
        else:
            return False
        return True

    def _emit_alt_code(self, digits: str) -> None:
        number = int(digits)
        if number <= 0:
            return
        if number < 256:
            self._emit(bytes([number]).decode("cp1252" if digits.startswith("0") else "cp437", "replace"))
        elif number <= 0x10FFFF:
            self._emit(chr(number))

    def _emit(self, ch: str) -> None:
        if self._dead is not None:
            accent, self._dead = self._dead, None
            if ch == " ":
                ch = accent
            else:
                composed = unicodedata.normalize("NFC", ch + COMBINING.get(accent, ""))
                if len(composed) == 1:
                    ch = composed
                else:
                    self._text.append(accent)
        self._text.append(ch)


def _control_char(ch: str, code: int) -> str | None:
    if code == KEY_RIGHTBRACE:
        return "\x1d"
    if len(ch) == 1:
        upper = ch.upper()
        if "@" <= upper <= "_":
            return chr(ord(upper) - 0x40)
    return None


def encode_text(keymap: Keymap, text: str, t0_us: int = 0, step_us: int = 2000) -> list[InputEvent]:
    """Key events that type `text` followed by Enter on `keymap` (the inverse of `KeyDecoder`).

    GS is typed as Ctrl+]. Characters the layout cannot type raise ValueError. Used by the HID
    simulator and by tests.
    """
    from drivers.scanners.keymaps import keystrokes

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
        strokes = keystrokes(keymap, ch)
        if strokes is None:
            raise ValueError(f"{ch!r} cannot be typed on the {keymap.name} layout")
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
