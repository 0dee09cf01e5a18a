"""GS1 Digital Link URIs → (AI, value) pairs. Pure; never raises (returns an error instead).

    https://id.gs1.org/01/09506000134352/10/ABC/21/123?17=201225

Any host and path prefix; the first path segment that is a primary key AI starts the element
data; its qualifiers follow in the order GS1 fixes (for a GTIN: 22, 10, 21, 235), each at most
once; query parameters that are AIs add attributes (others are ignored, a repeated AI keeps its
last value). The table of primary keys and their qualifiers is biip's, so it follows the GS1
Digital Link standard as biip does; the split is done here because biip's parser builds rich
objects for every element and costs ~400 µs a URI against ~10 µs here.
"""

from __future__ import annotations

from urllib.parse import unquote, unquote_plus

from edge_agent.decode import gs1

PRIMARY_KEYS: dict[str, tuple[int | None, tuple[str, ...]]] = {
    "01": (14, ("22", "10", "21", "235")),
    "8006": (None, ("22", "10", "21")),
    "8013": (None, ()),
    "8010": (None, ("8011",)),
    "414": (None, ("254", "7040")),
    "415": (None, ("8020",)),
    "417": (None, ("7040",)),
    "8017": (None, ("8019",)),
    "8018": (None, ("8019",)),
    "255": (None, ()),
    "00": (None, ()),
    "253": (None, ()),
    "401": (None, ()),
    "402": (None, ()),
    "8003": (None, ()),
    "8004": (None, ("7040",)),
}
"""GS1 Digital Link primary key AI → (width its value is zero-filled to, qualifier AIs in order):
biip's `_PRIMARY_IDENTIFIER_MAP`, written out so that the agent need not import biip's parser
(tests/test_decode_envelopes.py holds the two equal)."""


def split_uri(uri: str) -> list[tuple[str, str]] | str | None:
    """The URI's elements in order, or an error sentence for a Digital Link that is malformed,
    or None when the text is not a GS1 Digital Link URI at all."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return None
    rest, _, _fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    host, slash, path = rest.partition("/")
    if not host or not slash:
        return None
    segments = path.split("/")
    keys = PRIMARY_KEYS
    start = next((i for i, s in enumerate(segments) if s in keys), None)
    if start is None:
        return None
    data = segments[start:]
    if data and data[-1] == "":
        data.pop()  # a trailing slash
    if len(data) % 2:
        return f"GS1 Digital Link: the last path segment {data[-1]!r} has no value after it"
    primary = data[0]
    zfill, expected = keys[primary]
    value = unquote(data[1])
    elements = [(primary, value.zfill(zfill) if zfill and value.isdigit() else value)]
    allowed = list(expected)
    for i in range(2, len(data), 2):
        ai = data[i]
        while allowed and allowed[0] != ai:
            allowed.pop(0)
        if not allowed:
            order = ", ".join(expected) or "none"
            return (
                f"GS1 Digital Link: ({ai}) is not a qualifier of ({primary}) in this place "
                f"(qualifiers in order: {order})"
            )
        allowed.pop(0)
        elements.append((ai, unquote(data[i + 1])))
    if query:
        table = gs1.ai_table()
        attributes: dict[str, str] = {}
        for pair in query.split("&"):
            name, eq, raw = pair.partition("=")
            if eq and name in table:
                attributes[name] = unquote_plus(raw)
        elements.extend(attributes.items())
    return elements


def decode_digital_link(uri: str) -> gs1.Gs1Result | None:
    """A Digital Link URI as a GS1 result (every AI checked), or None when it is not one."""
    split = split_uri(uri)
    if split is None:
        return None
    if isinstance(split, str):
        return gs1.Gs1Result(False, split, {}, {})
    for ai, value in split:
        if not value:
            return gs1.Gs1Result(False, f"GS1 Digital Link: AI ({ai}) has an empty value", {}, {})
    return gs1.check_elements(split)
