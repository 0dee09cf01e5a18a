"""The HID key-event decoder, per keymap, against key sequences written down from each layout
(not from our tables), plus GS entry, dead keys, autorepeat, gap and the input_event parser."""

from __future__ import annotations

import string

import pytest

from drivers.scanners.hid_events import (
    EV_KEY,
    INPUT_EVENT,
    InputEvent,
    InputEventParser,
    KeyDecoder,
    encode_text,
)
from drivers.scanners.xkb import load_layout

SHIFT, ALTGR, CTRL, ALT, CAPS, ENTER, SPACE = 42, 100, 29, 56, 58, 28, 57
KP = {"0": 82, "1": 79, "2": 80, "9": 73}


class Typist:
    """Builds key events with timestamps 1 ms apart."""

    def __init__(self) -> None:
        self.events: list[InputEvent] = []
        self.t = 1_000_000

    def ev(self, code: int, value: int, dt: int = 1000) -> None:
        self.t += dt
        self.events.append(InputEvent(self.t // 1_000_000, self.t % 1_000_000, EV_KEY, code, value))

    def tap(self, code: int, *mods: int) -> Typist:
        for m in mods:
            self.ev(m, 1)
        self.ev(code, 1)
        self.ev(code, 0)
        for m in reversed(mods):
            self.ev(m, 0)
        return self

    def enter(self) -> Typist:
        return self.tap(ENTER)


def run(keymap: str, events: list[InputEvent], gap_us: int = 100_000) -> list[str]:
    decoder = KeyDecoder(load_layout(keymap), gap_us)
    out: list[str] = []
    for e in events:
        out += decoder.feed(e)
    return out


# (keymap, key taps [(code, modifiers...)], expected text); from the layouts' printed keycaps
LAYOUT_CASES = [
    ("us", [(3, SHIFT), (27,), (21,), (12, SHIFT), (40, SHIFT)], '@]y_"'),
    ("fi", [(3, ALTGR), (8, SHIFT), (26,), (39,), (40, SHIFT), (53,), (53, SHIFT), (10, ALTGR), (12, ALTGR), (86, ALTGR)],
     "@/åöÄ-_]\\|"),
    ("de", [(21,), (44,), (8, SHIFT), (16, ALTGR), (12,), (43,), (10, ALTGR), (27,), (4, SHIFT)], "zy/@ß#]+§"),
    ("fr", [(16,), (30,), (17,), (44,), (39,), (50,), (2,), (2, SHIFT), (11, ALTGR), (3,), (12, ALTGR), (52,)],
     "aqzwm,&1@é]:"),
]  # fmt: skip


@pytest.mark.parametrize(("keymap", "taps", "text"), LAYOUT_CASES, ids=[c[0] for c in LAYOUT_CASES])
def test_layout_keycaps(keymap: str, taps: list[tuple[int, ...]], text: str) -> None:
    t = Typist()
    for code, *mods in taps:
        t.tap(code, *mods)
    assert run(keymap, t.enter().events) == [text]


@pytest.mark.parametrize(
    ("keymap", "dead", "letter", "text"),
    [
        ("fi", (13,), (18,), "é"),  # ´ then e
        ("fi", (27,), (30,), "ä"),  # ¨ then a
        ("fi", (27, SHIFT), (SPACE,), "^"),  # ^ then space: the accent itself
        ("fi", (27, ALTGR), (SPACE,), "~"),
        ("de", (41,), (SPACE,), "^"),
        ("de", (13,), (18,), "é"),
        ("fr", (26,), (18,), "ê"),
        ("fr", (26, SHIFT), (24,), "ö"),  # ¨ then o
    ],
)
def test_dead_keys(keymap: str, dead: tuple[int, ...], letter: tuple[int, ...], text: str) -> None:
    t = Typist().tap(dead[0], *dead[1:]).tap(letter[0], *letter[1:]).enter()
    assert run(keymap, t.events) == [text]


def test_a_dead_key_that_composes_with_nothing_cancels_as_on_a_desktop() -> None:
    # ´ then x has no Compose sequence: xkb cancels it and types neither (GTK and Qt do the same)
    t = Typist().tap(2).tap(13).tap(45).tap(3).enter()
    assert run("fi", t.events) == ["12"]


@pytest.mark.parametrize("keymap", ["us", "fi", "de", "fr"])
def test_ctrl_rightbrace_is_gs(keymap: str) -> None:
    t = Typist().tap(11).tap(2).tap(27, CTRL).tap(5).enter()
    out = run(keymap, t.events)
    assert len(out) == 1 and out[0][2] == "\x1d" and len(out[0]) == 4


@pytest.mark.parametrize("keymap", ["us", "fi", "de", "fr"])
def test_alt_keypad_0029_is_gs(keymap: str) -> None:
    t = Typist().tap(KP["1"])
    t.ev(ALT, 1)
    for d in "0029":
        t.tap(KP[d])
    t.ev(ALT, 0)
    t.tap(KP["2"]).enter()
    assert run(keymap, t.events) == ["1\x1d2"]


def test_autorepeat_is_ignored() -> None:
    t = Typist()
    t.ev(30, 1)
    for _ in range(5):
        t.ev(30, 2)
    t.ev(30, 0)
    t.enter()
    assert run("us", t.events) == ["a"]


def test_caps_lock_inverts_letters_only() -> None:
    t = Typist().tap(CAPS).tap(30).tap(30, SHIFT).tap(2).tap(CAPS).tap(30).enter()
    assert run("us", t.events) == ["Aa1a"]


def test_inter_key_gap_ends_a_scan_without_enter() -> None:
    t = Typist().tap(30).tap(48)
    t.ev(46, 1, dt=500_000)  # half a second later: a new scan
    t.ev(46, 0)
    decoder = KeyDecoder(load_layout("us"), 100_000)
    out: list[str] = []
    for e in t.events:
        out += decoder.feed(e)
    assert out == ["ab"]
    assert decoder.pending
    assert decoder.flush() == "c"
    assert decoder.flush() is None


def test_release_of_unknown_keys_and_non_key_events_do_nothing() -> None:
    events = [InputEvent(0, 1, 4, 4, 458756), InputEvent(0, 2, 0, 0, 0)]
    t = Typist().tap(250).tap(30).enter()
    assert run("us", events + t.events) == ["a"]


@pytest.mark.parametrize("keymap", ["us", "fi", "de", "fr"])
def test_round_trip_all_printable_ascii_and_gs(keymap: str) -> None:
    text = string.printable[:94] + " \x1d"
    assert run(keymap, encode_text(load_layout(keymap), text)) == [text]


def _stream() -> tuple[bytes, list[str]]:
    texts = ["RR123456785SE", "]C100376104250021234569\x1d42000180"]
    events = encode_text(load_layout("fi"), texts[0]) + encode_text(
        load_layout("fi"), texts[1], t0_us=10_000_000
    )
    return b"".join(e.pack() for e in events), texts


def _decode_chunks(chunks: list[bytes]) -> list[str]:
    parser, decoder = InputEventParser(), KeyDecoder(load_layout("fi"))
    out: list[str] = []
    for chunk in chunks:
        for e in parser.feed(chunk):
            out += decoder.feed(e)
    return out


def test_parser_whole_buffer() -> None:
    data, texts = _stream()
    assert _decode_chunks([data]) == texts


def test_parser_one_byte_at_a_time() -> None:
    data, texts = _stream()
    assert _decode_chunks([data[i : i + 1] for i in range(len(data))]) == texts


def test_parser_keeps_a_partial_trailing_record() -> None:
    data, _ = _stream()
    parser = InputEventParser()
    events = parser.feed(data + b"\x01\x02\x03")
    assert len(events) * INPUT_EVENT.size == len(data)
    assert parser.feed(b"") == []
