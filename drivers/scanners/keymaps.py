"""Keyboard layouts a USB HID scanner may be programmed for: Linux key codes to characters.

Each layout is four rows of physical keys with the characters of each level (plain, Shift,
AltGr). A character in `DEAD` on a dead-key position composes with the next key, as the
console and X do for that layout.
"""

from __future__ import annotations

from dataclasses import dataclass

# Linux input key codes of the physical rows (ISO keyboard), left to right.
ROW1 = (41, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
ROW2 = (16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27)
ROW3 = (30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 43)
ROW4 = (86, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53)

# Keys outside the rows that read the same in every layout (keypad with NumLock on).
COMMON: dict[int, str] = {
    57: " ", 15: "\t",
    71: "7", 72: "8", 73: "9", 75: "4", 76: "5", 77: "6", 79: "1", 80: "2", 81: "3", 82: "0",
    83: ".", 74: "-", 78: "+", 55: "*", 98: "/",
}  # fmt: skip
KEYPAD_DIGITS: dict[int, str] = {
    71: "7",
    72: "8",
    73: "9",
    75: "4",
    76: "5",
    77: "6",
    79: "1",
    80: "2",
    81: "3",
    82: "0",
}

COMBINING = {"´": "\u0301", "`": "\u0300", "^": "\u0302", "¨": "\u0308", "~": "\u0303"}


@dataclass(frozen=True, slots=True)
class Keymap:
    name: str
    levels: dict[int, tuple[str, str, str]]
    """Key code to (plain, Shift, AltGr); '' where the level has no character."""
    dead: frozenset[tuple[int, int]]
    """(key code, level) pairs that are dead keys."""

    def char(self, code: int, shift: bool, altgr: bool) -> tuple[str, bool]:
        """The character of a key and whether it is a dead key; '' for none."""
        if code in COMMON:
            return COMMON[code], False
        row = self.levels.get(code)
        if row is None:
            return "", False
        level = 2 if altgr else 1 if shift else 0
        return row[level], (code, level) in self.dead


def _layout(
    name: str, rows: list[tuple[tuple[int, ...], str, str, dict[int, str]]], dead: set[tuple[int, int]]
) -> Keymap:
    levels: dict[int, tuple[str, str, str]] = {}
    for codes, plain, shifted, altgr in rows:
        if len(plain) != len(codes) or len(shifted) != len(codes):
            raise AssertionError(f"{name}: row of {len(codes)} keys has {len(plain)}/{len(shifted)} chars")
        for i, code in enumerate(codes):
            levels[code] = (plain[i].strip(), shifted[i].strip(), altgr.get(code, ""))
    return Keymap(name, levels, frozenset(dead))


US = _layout(
    "us",
    [
        (ROW1, "`1234567890-=", "~!@#$%^&*()_+", {}),
        (ROW2, "qwertyuiop[]", "QWERTYUIOP{}", {}),
        (ROW3, "asdfghjkl;'\\", 'ASDFGHJKL:"|', {}),
        (ROW4, "\\zxcvbnm,./", "|ZXCVBNM<>?", {}),
    ],
    set(),
)

FI = _layout(
    "fi",
    [
        (ROW1, "§1234567890+´", "½!\"#¤%&/()=?`", {3: "@", 4: "£", 5: "$", 6: "€", 8: "{", 9: "[", 10: "]", 11: "}", 12: "\\"}),
        (ROW2, "qwertyuiopå¨", "QWERTYUIOPÅ^", {18: "€", 27: "~"}),
        (ROW3, "asdfghjklöä'", "ASDFGHJKLÖÄ*", {}),
        (ROW4, "<zxcvbnm,.-", ">ZXCVBNM;:_", {86: "|"}),
    ],
    {(13, 0), (13, 1), (27, 0), (27, 1), (27, 2)},
)  # fmt: skip

DE = _layout(
    "de",
    [
        (ROW1, "^1234567890ß´", "°!\"§$%&/()=?`", {3: "²", 4: "³", 8: "{", 9: "[", 10: "]", 11: "}", 12: "\\"}),
        (ROW2, "qwertzuiopü+", "QWERTZUIOPÜ*", {16: "@", 18: "€", 27: "~"}),
        (ROW3, "asdfghjklöä#", "ASDFGHJKLÖÄ'", {}),
        (ROW4, "<yxcvbnm,.-", ">YXCVBNM;:_", {86: "|", 50: "µ"}),
    ],
    {(41, 0), (13, 0), (13, 1)},
)  # fmt: skip

FR = _layout(
    "fr",
    [
        (ROW1, "²&é\"'(-è_çà)=", " 1234567890°+",
         {3: "~", 4: "#", 5: "{", 6: "[", 7: "|", 8: "`", 9: "\\", 10: "^", 11: "@", 12: "]", 13: "}"}),
        (ROW2, "azertyuiop^$", "AZERTYUIOP¨£", {18: "€", 27: "¤"}),
        (ROW3, "qsdfghjklmù*", "QSDFGHJKLM%µ", {}),
        (ROW4, "<wxcvbn,;:!", ">WXCVBN?./§", {86: "|"}),
    ],
    {(26, 0), (26, 1)},
)  # fmt: skip

KEYMAPS: dict[str, Keymap] = {k.name: k for k in (US, FI, DE, FR)}


def keystrokes(keymap: Keymap, ch: str) -> list[tuple[int, bool, bool]] | None:
    """How to type `ch` on `keymap`: a list of (code, shift, altgr), dead key plus space if needed.

    The inverse of `Keymap.char`, used by the HID simulator and the tests.
    """
    for code, value in COMMON.items():
        if value == ch and code not in KEYPAD_DIGITS and code not in (83, 74, 78, 55, 98):
            return [(code, False, False)]
    for code, (plain, shifted, altgr) in keymap.levels.items():
        for level, value in enumerate((plain, shifted, altgr)):
            if value == ch:
                stroke = (code, level == 1, level == 2)
                if (code, level) in keymap.dead:
                    return [stroke, (57, False, False)]  # dead key + space gives the accent itself
                return [stroke]
    for code, value in COMMON.items():
        if value == ch:
            return [(code, False, False)]
    return None
