"""What a regular expression can match, read from its parse tree: the length range, and the
characters a match can start with. Used to skip, before running it, a pattern that cannot match.

Reads CPython's `re._parser` tree (stable in shape since 3.5). Whatever it does not understand
answers "anything" (None, or the widest range), so a wrong answer can only cost speed, never a
match.
"""

from __future__ import annotations

import re
import string
from typing import Any

try:  # CPython 3.11+
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other interpreters: no shortcut
    _p = None
    _c = None

_CATEGORIES: dict[Any, str] = {}
if _c is not None:
    _CATEGORIES = {
        _c.CATEGORY_DIGIT: string.digits,
        _c.CATEGORY_SPACE: string.whitespace,
        _c.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    }


def width(pattern: str) -> tuple[int, int]:
    """(shortest, longest) match length; longest is large when unbounded."""
    if _p is None:
        return 0, 1 << 30
    try:
        lo, hi = _p.parse(pattern).getwidth()
    except Exception:  # an exotic pattern: no shortcut
        return 0, 1 << 30
    return int(lo), int(hi)


def shape(pattern: str) -> tuple[int, int, frozenset[str] | None]:
    """`width` and `first_chars` from one parse."""
    if _p is None:
        return 0, 1 << 30, None
    try:
        parsed = _p.parse(pattern)
        lo, hi = parsed.getwidth()
    except Exception:  # an exotic pattern: no shortcut
        return 0, 1 << 30, None
    return int(lo), int(hi), _first_of(parsed)


def _first_of(parsed: Any) -> frozenset[str] | None:
    try:
        if parsed.state.flags & re.IGNORECASE:
            return None
        chars, _ = _first(list(parsed))
    except Exception:  # _Unknown, or a tree of a shape this reader does not know
        return None
    return frozenset(chars) if chars is not None else None


class _Unknown(Exception):
    pass


def _first(items: list[Any]) -> tuple[set[str] | None, bool]:
    """(first characters, can the sequence match empty) of a parsed sequence."""
    out: set[str] = set()
    for op, av in items:
        chars, nullable = _first_item(op, av)
        if chars is None:
            return None, False
        out |= chars
        if not nullable:
            return out, False
    return out, True


def _first_item(op: Any, av: Any) -> tuple[set[str] | None, bool]:
    if op is _c.LITERAL:
        return {chr(av)}, False
    if op is _c.IN:
        return _in_set(av), False
    if op is _c.AT:
        return set(), True
    if op is _c.SUBPATTERN:
        return _first(list(av[-1]))
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
        lo, _hi, sub = av
        chars, nullable = _first(list(sub))
        return chars, nullable or lo == 0
    if op is _c.BRANCH:
        out: set[str] = set()
        nullable = False
        for alt in av[1]:
            chars, n = _first(list(alt))
            if chars is None:
                return None, False
            out |= chars
            nullable = nullable or n
        return out, nullable
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return set(), True  # a lookaround consumes nothing; ignoring it only widens the set
    raise _Unknown(op)


def _in_set(av: Any) -> set[str]:
    out: set[str] = set()
    negate = False
    for op, value in av:
        if op is _c.NEGATE:
            negate = True
        elif op is _c.LITERAL:
            out.add(chr(value))
        elif op is _c.RANGE:
            lo, hi = value
            if hi > 127:
                raise _Unknown(op)
            out.update(chr(i) for i in range(lo, hi + 1))
        elif op is _c.CATEGORY and value in _CATEGORIES:
            out.update(_CATEGORIES[value])
        else:
            raise _Unknown(op)
    if negate:
        raise _Unknown("a negated set can start with any other character")
    return out
