"""Product numbers from EAN/UPC symbols and ITF-14 (labels.md kind 6 `gtin`). Pure; never raises.

Theory of operation: a scanner sends the digits of the symbol, often behind an AIM identifier
that says which symbol it was. `]E0` is EAN-13, UPC-A or UPC-E, `]E4` EAN-8, `]E1`/`]E2` a 2- or
5-digit add-on alone, `]E3` a main symbol with its add-on in one transmission, `]I1` ITF (a GTIN-14
when it has 14 digits). Without an identifier the length says it: 8 (EAN-8), 12 (UPC-A), 13
(EAN-13) or 14 (GTIN-14) digits. UPC-E (8 digits, number system 0 or 1, under `]E0`) is expanded
to its UPC-A number by GS1's zero-suppression rules, so it decodes to the same GTIN as the UPC-A a
scanner may send in its place. Every number is checked with the GS1 mod-10 check digit and is
reported as a GTIN-14 (left-padded with zeros), the form a manifest's items are compared in.
"""

from __future__ import annotations

from dataclasses import dataclass

EAN_SYMBOLOGIES = frozenset({"]E0", "]E1", "]E2", "]E3", "]E4"})
ITF = "]I1"
BARE_LENGTHS = frozenset({8, 12, 13, 14})
_ADDON_LENGTHS = (2, 5)


@dataclass(frozen=True, slots=True)
class GtinResult:
    valid: bool
    error: str | None
    format: str | None
    """`ean13`, `upca`, `ean8`, `upce`, `gtin14`, or `addon` for an add-on read alone."""
    gtin14: str | None
    addon: str | None

    def detail(self) -> dict[str, str | None]:
        return {"format": self.format, "gtin14": self.gtin14, "addon": self.addon}


def check_digit(body: str) -> int:
    """The GS1 mod-10 check digit of `body` (the digits before it): weights 3, 1, 3, ... from the
    right."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        total += (ord(ch) - 48) * (3 if i % 2 == 0 else 1)
    return (10 - total % 10) % 10


def expand_upce(upce: str) -> str:
    """An 8-digit UPC-E (number system, six digits, check digit) as its 12-digit UPC-A, by the
    last of the six digits: 0-2 moves the manufacturer's third digit, 3 and 4 say how many digits
    the manufacturer's number has, 5-9 are the product's last digit."""
    ns, d, check = upce[0], upce[1:7], upce[7]
    last = d[5]
    if last in "012":
        middle = d[0:2] + last + "0000" + d[2:5]
    elif last == "3":
        middle = d[0:3] + "00000" + d[3:5]
    elif last == "4":
        middle = d[0:4] + "00000" + d[4]
    else:
        middle = d[0:5] + "0000" + last
    return ns + middle + check


def _invalid(error: str, fmt: str | None = None, addon: str | None = None) -> GtinResult:
    return GtinResult(False, error, fmt, None, addon)


def _number(digits: str, fmt: str, shown: str | None = None) -> GtinResult:
    """A whole number with its check digit: checked, and as a GTIN-14."""
    expected = check_digit(digits[:-1])
    if ord(digits[-1]) - 48 != expected:
        name = {"ean13": "EAN-13", "upca": "UPC-A", "ean8": "EAN-8", "upce": "UPC-E", "gtin14": "GTIN-14"}[
            fmt
        ]
        return _invalid(
            f"{name} {shown or digits} has a wrong check digit: {digits[-1]}, should be {expected}", fmt
        )
    return GtinResult(True, None, fmt, digits.zfill(14), None)


def _main(digits: str, symbology: str | None) -> GtinResult:
    n = len(digits)
    if n == 8 and symbology == "]E0" and digits[0] in "01":
        return _number(expand_upce(digits), "upce", digits)
    if n == 8:
        return _number(digits, "ean8")
    if n == 12:
        return _number(digits, "upca")
    if n == 13:
        return _number(digits, "upca" if digits[0] == "0" else "ean13")
    if n == 14:
        return _number(digits, "gtin14")
    return _invalid(f"a product number has 8, 12, 13 or 14 digits, not {n}")


def _with_addon(digits: str) -> GtinResult:
    """`]E3`: the main number and its add-on in one transmission."""
    for main in (13, 12, 8):
        rest = len(digits) - main
        if rest in _ADDON_LENGTHS and (main != 8 or digits[0] in "01"):
            result = _main(digits[:main], "]E0")
            addon = digits[main:]
            return GtinResult(result.valid, result.error, result.format, result.gtin14, addon)
    return _invalid(
        f"]E3 carries a product number with a 2- or 5-digit add-on; {len(digits)} digits are neither"
    )


def decode_gtin(body: str, symbology: str | None) -> GtinResult:
    """`body` (the payload without its AIM identifier) as a product number. Under the EAN/UPC
    identifiers any payload gives a result (an invalid one for letters or a wrong length); the
    caller decides for bare strings and `]I1` whether to try this at all (`wants`)."""
    if not (body.isascii() and body.isdigit()):
        bad = next((i for i, ch in enumerate(body) if not ("0" <= ch <= "9")), 0)
        return _invalid(f"a product number is digits only; position {bad} is {body[bad]!r}")
    if symbology in ("]E1", "]E2"):
        if len(body) not in _ADDON_LENGTHS:
            return _invalid(f"an add-on has 2 or 5 digits, not {len(body)}", "addon")
        return GtinResult(True, None, "addon", None, body)
    if symbology == "]E3":
        return _with_addon(body)
    if symbology == "]E4" and len(body) != 8:
        return _invalid(f"EAN-8 has 8 digits, not {len(body)}", "ean8")
    return _main(body, symbology)


def symbol_says_gtin(body: str, symbology: str | None) -> bool:
    """Whether the symbol itself makes a payload a product number, before any other kind is
    tried: an EAN/UPC symbol always (whatever its digits would also pass for), an ITF symbol of 14
    digits (ITF-14; as a bare string, a carrier's 14-digit format would take it first)."""
    if symbology in EAN_SYMBOLOGIES:
        return True
    return symbology == ITF and len(body) == 14 and body.isascii() and body.isdigit()


def wants(body: str, symbology: str | None) -> bool:
    """Whether a payload that no earlier kind took is a product number: a bare string (no AIM
    identifier) of 8, 12, 13 or 14 digits."""
    return symbology is None and len(body) in BARE_LENGTHS and body.isascii() and body.isdigit()
