"""Keyboard layouts through libxkbcommon (the X keyboard configuration), by ctypes.

`load_layout("de(nodeadkeys)")` compiles a keymap as a desktop would for that layout and variant
(rules evdev, model pc105) and answers two questions: what a key press types in a given state
(`XkbState`, with `Composer` for dead keys and Compose sequences from the locale's Compose
table), and how to type a character (`XkbLayout.keystrokes`, the inverse, for simulators and
tests). libxkbcommon and the layouts come from Debian's `libxkbcommon0` and `xkb-data`
(Raspberry Pi OS has both); dead keys compose through libX11's Compose tables (`libx11-data`),
and with no table a dead key composes by Unicode normalisation instead.

ctypes rather than the PyPI `xkbcommon` bindings: those are built with cffi against the
library's headers, which a Pi would need a compiler and `libxkbcommon-dev` for; the dozen calls
used here need neither.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
import unicodedata
import weakref
from dataclasses import dataclass, field
from functools import cache

EVDEV_OFFSET = 8
"""xkb key codes are evdev key codes plus 8."""
KEY_LEFTSHIFT, KEY_RIGHTALT, KEY_SPACE, KEY_NUMLOCK = 42, 100, 57, 69
_DOWN, _UP = 1, 0
_NO_ENVIRONMENT_NAMES = 1 << 1
_LOG_CRITICAL = 10
COMPOSE_NOTHING, COMPOSE_COMPOSING, COMPOSE_COMPOSED, COMPOSE_CANCELLED = 0, 1, 2, 3
COMPOSE_LOCALE = "en_US.UTF-8"
"""Compose sequences of this locale; fixed, so the agent types the same whatever LANG says."""
_LAYOUT_NAME = re.compile(r"^([a-z][a-z0-9_]*)(?:\(([A-Za-z0-9_-]+)\))?$")
# Dead keysyms (keysymdef.h, 0xfe50-) to the combining mark they add, for the fallback without a
# Compose table.
_DEAD_MARKS = {
    0xFE50: "\u0300", 0xFE51: "\u0301", 0xFE52: "\u0302", 0xFE53: "\u0303", 0xFE54: "\u0304",
    0xFE55: "\u0306", 0xFE56: "\u0307", 0xFE57: "\u0308", 0xFE58: "\u030a", 0xFE59: "\u030b",
    0xFE5A: "\u030c", 0xFE5B: "\u0327", 0xFE5C: "\u0328",
}  # fmt: skip


class LayoutError(ValueError):
    """A layout name that xkb does not know, or libxkbcommon missing."""


class _RuleNames(ctypes.Structure):
    _fields_ = [(name, ctypes.c_char_p) for name in ("rules", "model", "layout", "variant", "options")]


@cache
def _lib() -> ctypes.CDLL:
    path = ctypes.util.find_library("xkbcommon") or "libxkbcommon.so.0"
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise LayoutError(
            f"libxkbcommon is not installed ({exc}); install Debian's libxkbcommon0 and xkb-data"
        ) from None
    p, u32, i = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int
    for name, res, args in (
        ("xkb_context_new", p, [i]),
        ("xkb_context_set_log_level", None, [p, i]),
        ("xkb_keymap_new_from_names", p, [p, ctypes.POINTER(_RuleNames), i]),
        ("xkb_state_new", p, [p]),
        ("xkb_state_unref", None, [p]),
        ("xkb_state_update_key", i, [p, u32, i]),
        ("xkb_state_key_get_utf8", i, [p, u32, ctypes.c_char_p, ctypes.c_size_t]),
        ("xkb_state_key_get_one_sym", u32, [p, u32]),
        ("xkb_compose_table_new_from_locale", p, [p, ctypes.c_char_p, i]),
        ("xkb_compose_state_new", p, [p, i]),
        ("xkb_compose_state_unref", None, [p]),
        ("xkb_compose_state_reset", None, [p]),
        ("xkb_compose_state_feed", i, [p, u32]),
        ("xkb_compose_state_get_status", i, [p]),
        ("xkb_compose_state_get_utf8", i, [p, ctypes.c_char_p, ctypes.c_size_t]),
    ):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


@cache
def _context() -> int:
    lib = _lib()
    ctx = lib.xkb_context_new(_NO_ENVIRONMENT_NAMES)  # XKB_DEFAULT_* of the shell must not leak in
    if not ctx:
        raise LayoutError("libxkbcommon could not make a context")
    lib.xkb_context_set_log_level(ctx, _LOG_CRITICAL)  # an unknown layout is our error to report
    return int(ctx)


@cache
def _compose_table() -> int | None:
    table = _lib().xkb_compose_table_new_from_locale(_context(), COMPOSE_LOCALE.encode(), 0)
    return int(table) if table else None


def _utf8(call: object, *args: object) -> str:
    buf = ctypes.create_string_buffer(64)
    n = call(*args, buf, len(buf))  # type: ignore[operator]
    return buf.raw[: max(0, min(n, 63))].decode("utf-8", "replace")


class XkbState:
    """What keys type, as a desktop's keyboard state tracks it (levels, locks, NumLock on)."""

    def __init__(self, keymap: int) -> None:
        lib = _lib()
        self._lib = lib
        self._state = lib.xkb_state_new(keymap)
        if not self._state:
            raise LayoutError("libxkbcommon could not make a keyboard state")
        weakref.finalize(self, lib.xkb_state_unref, self._state)
        self.press(KEY_NUMLOCK)  # scanners that type keypad digits expect NumLock on
        self.release(KEY_NUMLOCK)

    def press(self, code: int) -> tuple[str, int]:
        """(text, keysym) of pressing evdev key `code` in the current state; then the state
        takes the press (a modifier changes what the next keys type)."""
        kc = code + EVDEV_OFFSET
        text = _utf8(self._lib.xkb_state_key_get_utf8, self._state, kc)
        sym = int(self._lib.xkb_state_key_get_one_sym(self._state, kc))
        self._lib.xkb_state_update_key(self._state, kc, _DOWN)
        return text, sym

    def release(self, code: int) -> None:
        self._lib.xkb_state_update_key(self._state, code + EVDEV_OFFSET, _UP)


class Composer:
    """Dead keys and Compose sequences: feed each pressed key's keysym and text, get the text to
    type (possibly empty while a sequence is under way, or when one is cancelled)."""

    def __init__(self) -> None:
        self._lib = _lib()
        table = _compose_table()
        self._state = self._lib.xkb_compose_state_new(table, 0) if table else None
        if self._state:
            weakref.finalize(self, self._lib.xkb_compose_state_unref, self._state)
        self._dead: str | None = None  # the fallback's pending mark

    @property
    def pending(self) -> bool:
        if self._state:
            return bool(self._lib.xkb_compose_state_get_status(self._state) == COMPOSE_COMPOSING)
        return self._dead is not None

    def feed(self, sym: int, text: str) -> str:
        if not self._state:
            return self._fallback(sym, text)
        if not self._lib.xkb_compose_state_feed(self._state, sym):
            return text  # ignored (a modifier's keysym): the sequence goes on
        status = self._lib.xkb_compose_state_get_status(self._state)
        if status == COMPOSE_COMPOSING:
            return ""
        if status == COMPOSE_COMPOSED:
            out = _utf8(self._lib.xkb_compose_state_get_utf8, self._state)
            self._lib.xkb_compose_state_reset(self._state)
            return out
        if status == COMPOSE_CANCELLED:
            self._lib.xkb_compose_state_reset(self._state)
            return ""
        return text

    def reset(self) -> None:
        if self._state:
            self._lib.xkb_compose_state_reset(self._state)
        self._dead = None

    def _fallback(self, sym: int, text: str) -> str:
        if sym in _DEAD_MARKS:
            self._dead = _DEAD_MARKS[sym]
            return ""
        if self._dead is None or not text:
            return text
        mark, self._dead = self._dead, None
        if text == " ":
            return unicodedata.normalize("NFC", "\u00a0" + mark).strip() or mark
        composed = unicodedata.normalize("NFC", text + mark)
        return composed if len(composed) == 1 else ""


Stroke = tuple[int, bool, bool]
"""(evdev key code, Shift, AltGr)"""


@dataclass(eq=False)
class XkbLayout:
    name: str
    keymap: int
    _typing: dict[str, list[Stroke]] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def new_state(self) -> XkbState:
        return XkbState(self.keymap)

    def keystrokes(self, ch: str) -> list[Stroke] | None:
        """How to type `ch`: one stroke, or a dead key and the key it composes with; None when
        the layout cannot type it."""
        with self._lock:
            if self._typing is None:
                self._typing = self._build()
        return self._typing.get(ch)

    def _build(self) -> dict[str, list[Stroke]]:
        direct: dict[str, Stroke] = {}
        dead: dict[int, Stroke] = {}
        for shift, altgr in ((False, False), (True, False), (False, True), (True, True)):
            for code in range(1, 128):  # the fewest modifiers first: the way a person would type it
                state = self.new_state()
                if shift:
                    state.press(KEY_LEFTSHIFT)
                if altgr:
                    state.press(KEY_RIGHTALT)
                text, sym = state.press(code)
                if sym in range(0xFE50, 0xFE90):
                    dead.setdefault(sym, (code, shift, altgr))
                elif len(text) == 1 and (text.isprintable() or text == "\t"):
                    direct.setdefault(text, (code, shift, altgr))
        out: dict[str, list[Stroke]] = {ch: [stroke] for ch, stroke in direct.items()}
        for stroke in dead.values():
            for base in direct.values():
                typed = self._type([stroke, base])
                if len(typed) == 1 and typed not in out:
                    out[typed] = [stroke, base]
        return out

    def _type(self, strokes: list[Stroke]) -> str:
        state, composer, out = self.new_state(), Composer(), ""
        for code, shift, altgr in strokes:
            if shift:
                state.press(KEY_LEFTSHIFT)
            if altgr:
                state.press(KEY_RIGHTALT)
            text, sym = state.press(code)
            state.release(code)
            if altgr:
                state.release(KEY_RIGHTALT)
            if shift:
                state.release(KEY_LEFTSHIFT)
            out += composer.feed(sym, text)
        return out


_LAYOUTS: dict[str, XkbLayout] = {}
_LAYOUTS_LOCK = threading.Lock()


def load_layout(name: str) -> XkbLayout:
    """The compiled layout `name` (`us`, `gb`, `de(nodeadkeys)`, ...); LayoutError if xkb does
    not know it. Compiled once per process."""
    with _LAYOUTS_LOCK:
        found = _LAYOUTS.get(name)
        if found is not None:
            return found
        m = _LAYOUT_NAME.match(name)
        if m is None:
            raise LayoutError(f"{name!r} is not a keyboard layout name (e.g. 'gb' or 'de(nodeadkeys)')")
        layout, variant = m.group(1), m.group(2) or ""
        names = _RuleNames(b"evdev", b"pc105", layout.encode(), variant.encode(), b"")
        keymap = _lib().xkb_keymap_new_from_names(_context(), ctypes.byref(names), 0)
        if not keymap:
            what = f"layout {layout!r} with variant {variant!r}" if variant else f"layout {layout!r}"
            raise LayoutError(f"the X keyboard configuration has no {what}")
        found = _LAYOUTS[name] = XkbLayout(name, int(keymap))
        return found
