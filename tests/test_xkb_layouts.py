"""Keyboard-wedge scanners in any layout: the key-event decoder against libxkbcommon itself.

The reference here drives libxkbcommon directly (its own ctypes calls, not `drivers.scanners.xkb`)
the way a desktop does: each press asks the state for the key's text and keysym, feeds the
keysym to the locale's Compose state, then updates the state. The decoder must type exactly
what that gives, for random key sequences with Shift, AltGr, CapsLock and dead keys.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import random

import pytest

from drivers.scanners.hid_events import EV_KEY, InputEvent, KeyDecoder, encode_text
from drivers.scanners.xkb import LayoutError, load_layout

LAYOUTS = [
    "us",
    "gb",
    "de",
    "fr",
    "fi",
    "se",
    "no",
    "dk",
    "pl",
    "nl",
    "es",
    "it",
    "ch",
    "be",
    "de(nodeadkeys)",
]
SHIFT, ALTGR, CAPS, ENTER = 42, 100, 58, 28
KEYS = [*range(2, 14), *range(16, 28), *range(30, 42), *range(43, 54), 86, 57]
SAMPLES = {
    "gb": "£¬¦€",
    "se": "åäöÅÄÖ§½",
    "no": "æøåÆØÅ§|",
    "dk": "æøåÆØÅ½§",
    "pl": "ąęółśżźćńĄĘŁ",
    "de": "äöüßÄÖÜ§°²³µ€",
    "fr": "éèçàù²µ£§€",
    "es": "ñÑçÇºª¡¿",
    "it": "àèéìòù§°£",
    "fi": "åäöÅÄÖ§½€",
}


class _Xkb:
    """The reference: libxkbcommon through its C API, as a desktop toolkit calls it."""

    def __init__(self, layout: str) -> None:
        lib = ctypes.CDLL(ctypes.util.find_library("xkbcommon") or "libxkbcommon.so.0")
        p = ctypes.c_void_p
        lib.xkb_context_new.restype = p
        lib.xkb_keymap_new_from_names.restype = p
        lib.xkb_keymap_new_from_names.argtypes = [p, p, ctypes.c_int]
        lib.xkb_state_new.restype = p
        lib.xkb_state_new.argtypes = [p]
        lib.xkb_state_update_key.argtypes = [p, ctypes.c_uint32, ctypes.c_int]
        lib.xkb_state_key_get_utf8.argtypes = [p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]
        lib.xkb_state_key_get_one_sym.argtypes = [p, ctypes.c_uint32]
        lib.xkb_state_key_get_one_sym.restype = ctypes.c_uint32
        lib.xkb_compose_table_new_from_locale.restype = p
        lib.xkb_compose_table_new_from_locale.argtypes = [p, ctypes.c_char_p, ctypes.c_int]
        lib.xkb_compose_state_new.restype = p
        lib.xkb_compose_state_new.argtypes = [p, ctypes.c_int]
        lib.xkb_compose_state_feed.argtypes = [p, ctypes.c_uint32]
        lib.xkb_compose_state_get_status.argtypes = [p]
        lib.xkb_compose_state_get_utf8.argtypes = [p, ctypes.c_char_p, ctypes.c_size_t]
        lib.xkb_compose_state_reset.argtypes = [p]
        name, _, variant = layout.rstrip(")").partition("(")
        names = (ctypes.c_char_p * 5)(b"evdev", b"pc105", name.encode(), variant.encode(), b"")
        ctx = lib.xkb_context_new(2)
        keymap = lib.xkb_keymap_new_from_names(ctx, ctypes.cast(names, p), 0)
        assert keymap, layout
        self.lib, self.state = lib, lib.xkb_state_new(keymap)
        table = lib.xkb_compose_table_new_from_locale(ctx, b"en_US.UTF-8", 0)
        self.compose = lib.xkb_compose_state_new(table, 0) if table else None
        self.key(69, 1)  # NumLock on, as the agent sets it
        self.key(69, 0)

    def key(self, code: int, value: int) -> str:
        lib, kc = self.lib, code + 8
        if value == 0:
            lib.xkb_state_update_key(self.state, kc, 0)
            return ""
        buf = ctypes.create_string_buffer(64)
        n = lib.xkb_state_key_get_utf8(self.state, kc, buf, 64)
        text = buf.raw[:n].decode()
        sym = lib.xkb_state_key_get_one_sym(self.state, kc)
        lib.xkb_state_update_key(self.state, kc, 1)
        if self.compose and lib.xkb_compose_state_feed(self.compose, sym):
            status = lib.xkb_compose_state_get_status(self.compose)
            if status == 1:  # composing
                return ""
            if status == 2:  # composed
                n = lib.xkb_compose_state_get_utf8(self.compose, buf, 64)
                lib.xkb_compose_state_reset(self.compose)
                return buf.raw[:n].decode()
            if status == 3:  # cancelled
                lib.xkb_compose_state_reset(self.compose)
                return ""
        return text


def _random_taps(rng: random.Random, n: int) -> list[tuple[int, ...]]:
    taps: list[tuple[int, ...]] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.05:
            taps.append((CAPS,))
        else:
            mods = rng.choice([(), (), (SHIFT,), (ALTGR,), (SHIFT, ALTGR)])
            taps.append((rng.choice(KEYS), *mods))
    return taps


def _events(taps: list[tuple[int, ...]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for code, *mods in taps:
        out += [(m, 1) for m in mods] + [(code, 1), (code, 0)] + [(m, 0) for m in reversed(mods)]
    return out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_random_keys_type_what_xkb_itself_types(layout: str) -> None:
    rng = random.Random(layout)
    for _ in range(40):
        events = _events(_random_taps(rng, 30))
        reference = _Xkb(layout)
        expected = "".join(reference.key(code, value) for code, value in events)
        expected = "".join(ch for ch in expected if ch >= " ")  # control characters are not typed text
        decoder = KeyDecoder(load_layout(layout), gap_us=10**9)
        t = 1_000_000
        out: list[str] = []
        for code, value in [*events, (ENTER, 1), (ENTER, 0)]:
            t += 1000
            out += decoder.feed(InputEvent(t // 1_000_000, t % 1_000_000, EV_KEY, code, value))
        assert out == ([expected] if expected else []), (layout, events)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_character_a_layout_types_round_trips(layout: str) -> None:
    keyboard = load_layout(layout)
    wanted = "".join(sorted(set("ABCXYZabcxyz0123456789-./: ]" + SAMPLES.get(layout.partition("(")[0], ""))))
    text = "".join(ch for ch in wanted if keyboard.keystrokes(ch) is not None) + "\x1d"
    assert len(text) >= 25, (layout, text)
    decoder = KeyDecoder(keyboard)
    out: list[str] = []
    for event in encode_text(keyboard, text):
        out += decoder.feed(event)
    assert out == [text]


def test_layout_specific_characters_need_their_layout() -> None:
    assert load_layout("pl").keystrokes("ł") is not None
    assert load_layout("us").keystrokes("ł") is None
    assert load_layout("gb").keystrokes("£") == [(4, True, False)]  # Shift+3, as printed on the key
    with pytest.raises(ValueError, match="cannot be typed"):
        encode_text(load_layout("us"), "£")


@pytest.mark.parametrize(
    ("name", "needle"), [("xx", "layout 'xx'"), ("de(nope)", "variant 'nope'"), ("US;rm", "not a keyboard")]
)
def test_unknown_layouts_are_refused_naming_them(name: str, needle: str) -> None:
    with pytest.raises(LayoutError, match=needle.replace("(", r"\(")):
        load_layout(name)
