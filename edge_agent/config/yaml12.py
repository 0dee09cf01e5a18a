"""YAML 1.2, as the contract reads the configuration (cli.md).

PyYAML implements YAML 1.1, where `no`, `NO`, `on`, `off`, `yes` and `y` are booleans and `0755`
is octal: `keymap: no` (Norway's layout) became `false`. ruamel.yaml reads YAML 1.2's core schema,
where only `true`/`false` are booleans, so these stay the text that was written.

The document comes back as plain dicts, lists and scalars (pydantic validates those), with a map
from each key path to its line and column, so an error names where in the file it is.
"""

from __future__ import annotations

import datetime
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

Path = tuple[int | str, ...]
Positions = dict[Path, tuple[int, int]]
"""Key path → (line, column), both counted from 1."""


class YamlError(ValueError):
    """Not YAML; `line`/`column` (from 1) where the parser stopped, when it knows."""

    def __init__(self, problem: str, line: int | None = None, column: int | None = None) -> None:
        self.problem, self.line, self.column = problem, line, column
        where = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"{problem}{where}")


def _loader() -> YAML:
    yaml = YAML(typ="rt")  # round-trip: the only loader that keeps line and column
    yaml.version = (1, 2)
    yaml.allow_duplicate_keys = False
    return yaml


def load_yaml(text: str) -> tuple[Any, Positions]:
    """Parse one YAML 1.2 document; raises `YamlError`."""
    try:
        doc = _loader().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        if mark is None:
            raise YamlError(problem) from None
        raise YamlError(problem, mark.line + 1, mark.column + 1) from None
    except YAMLError as exc:
        raise YamlError(str(exc).strip() or "not valid YAML") from None
    positions: Positions = {}
    return _plain(doc, (), positions), positions


def loads(text: str) -> Any:
    """Just the data."""
    return load_yaml(text)[0]


def _plain(node: Any, path: Path, positions: Positions) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for raw_key, value in node.items():
            key = _plain(raw_key, path, {})
            line, col = node.lc.key(raw_key)
            positions[(*path, key)] = (line + 1, col + 1)
            out[key] = _plain(value, (*path, key), positions)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            line, col = node.lc.item(i)
            positions[(*path, i)] = (line + 1, col + 1)
            items.append(_plain(value, (*path, i), positions))
        return items
    # ruamel's scalar types (ScalarInt, ScalarFloat, ScalarBoolean, the string kinds) become the
    # builtins they stand for: pydantic and JSON see ordinary values
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        if type(node).__name__ == "ScalarBoolean":
            return bool(node)
        # `0755` (a PIN, a mode): YAML 1.2 reads it as 755, YAML 1.1 as 493; the text written is
        # kept, which a number field still reads as 755 and a text field keeps as it is
        width, digits = getattr(node, "_width", None), str(int(node))
        if width and node >= 0 and width > len(digits):
            return digits.rjust(width, "0")
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, datetime.datetime | datetime.date):
        return node.isoformat()
    return node


def position_of(positions: Positions, loc: Path) -> tuple[int, int] | None:
    """Where `loc` is, else its nearest enclosing key (a missing key: where it belongs)."""
    loc = tuple(loc)
    while loc:
        if loc in positions:
            return positions[loc]
        loc = loc[:-1]
    return None
