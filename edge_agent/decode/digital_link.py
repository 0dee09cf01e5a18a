"""GS1 Digital Link URIs → (AI, value) pairs. Pure; never raises (returns an error instead).

    https://id.gs1.org/01/09506000134352/10/ABC/21/123?17=201225

Any host and stem; the GS1 path is the tail of the URI's path that reads as a primary key AI
and its qualifiers, found as GS1's syntax engine finds it (walking back from the end, so a stem
may hold segments that look like AIs); its qualifiers follow in one of the orders GS1 fixes (for a
GTIN: 22, 10, 21, or 235), each at most once; a trailing `/` is an error. Query parameters whose
names are digits must be known AIs, with a value, each once, and not a qualifier that belongs in
the path; other parameters are ignored. The table of primary keys and their qualifiers is biip's, so it follows the GS1
Digital Link standard as biip does; the split is done here because biip's parser builds rich
objects for every element and costs ~400 µs a URI against ~10 µs here.
"""

from __future__ import annotations

from collections.abc import Mapping
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


QUALIFIER_CHAINS: dict[str, tuple[tuple[str, ...], ...]] = {
    "01": (("22", "10", "21"), ("235",)),
    "414": (("254",), ("7040",)),
}
"""Primary keys whose qualifiers are alternatives, as GS1's syntax dictionary writes them
(`dlpkey=22,10,21|235`): a path takes its qualifiers from one chain only. Every other key has
the one chain of `PRIMARY_KEYS` (tests/test_decode_envelopes.py holds the chains to biip's)."""

# RFC 3986's characters (unreserved, reserved, and % for escapes), as GS1's syntax engine allows.
_URI_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
)

_BAD_HOST_CHARS = frozenset("_~?#@!$&'()*+,;=%")


def _chains(primary: str) -> tuple[tuple[str, ...], ...]:
    return QUALIFIER_CHAINS.get(primary) or (PRIMARY_KEYS[primary][1],)


def valid_path(ais: list[str]) -> bool:
    """Whether a path's AIs are a primary key followed by qualifiers of one of its chains, each at
    most once and in the chain's order."""
    if not ais or ais[0] not in PRIMARY_KEYS:
        return False
    for chain in _chains(ais[0]):
        pos = 0
        for ai in ais[1:]:
            try:
                pos = chain.index(ai, pos) + 1
            except ValueError:
                break
        else:
            return True
    return False


def _gs1_path_start(segments: list[str], table: Mapping[str, object]) -> int | None:
    """Where the GS1 path starts: walking back from the end two segments at a time, the first
    pair whose AI is a primary key, as long as every pair after it has a known AI. Whatever comes
    before it is the stem, even segments that look like AIs (GS1's syntax engine reads it so)."""
    i = len(segments) - 2
    while i >= 0:
        ai = segments[i]
        if ai not in table:
            return None
        if ai in PRIMARY_KEYS:
            return i
        i -= 2
    return None


def split_uri(uri: str) -> list[tuple[str, str]] | str | None:
    """The URI's elements in order, or an error sentence for a Digital Link that is malformed,
    or None when the text is not a GS1 Digital Link URI at all."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("http", "https", "HTTP", "HTTPS"):
        return None
    rest, _, _fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    host, slash, path = rest.partition("/")
    if not host or not slash:
        return None
    table = gs1.ai_table()
    segments = path.split("/")
    trailing = len(segments) > 1 and segments[-1] == ""
    if trailing:
        segments.pop()
    start = _gs1_path_start(segments, table)
    if start is None:
        if segments[-1] in table and _gs1_path_start(segments[:-1], table) is not None:
            return f"GS1 Digital Link: the last path segment {segments[-1]!r} has no value after it"
        return None
    if trailing:
        return "GS1 Digital Link: the URI ends with '/' after its last value"
    bad_host = next((ch for ch in host if ch in _BAD_HOST_CHARS), None)
    if bad_host is not None:
        return f"GS1 Digital Link: the host {host!r} holds {bad_host!r}"
    bad = next((i for i, ch in enumerate(uri) if ch not in _URI_CHARS), None)
    if bad is not None:
        return f"GS1 Digital Link: {uri[bad]!r} at position {bad} is not allowed in a URI (escape it)"
    data = segments[start:]
    path_ais = data[0::2]
    if not valid_path(path_ais):
        primary = path_ais[0]
        culprit = next(ai for k, ai in enumerate(path_ais) if not valid_path(path_ais[: k + 1]))
        chains = " or ".join(", ".join(c) for c in _chains(primary)) or "none"
        return (
            f"GS1 Digital Link: ({culprit}) is not a qualifier of ({primary}) in this place "
            f"(qualifiers in order: {chains})"
        )
    zfill = PRIMARY_KEYS[data[0]][0]
    elements: list[tuple[str, str]] = []
    for i in range(0, len(data), 2):
        ai, value = data[i], unquote(data[i + 1])
        if i == 0 and zfill and value.isdigit():
            value = value.zfill(zfill)
        elements.append((ai, value))
    if query:
        attributes = _query(query, path_ais, table)
        if isinstance(attributes, str):
            return attributes
        elements.extend(attributes)
    return elements


def _query(query: str, path_ais: list[str], table: Mapping[str, object]) -> list[tuple[str, str]] | str:
    """The AIs among the query parameters. A name of digits only must be a known AI; other names
    are ignored. An AI may occur once in the whole URI, and one that is a qualifier of the path's
    key, where the path could hold it, belongs in the path."""
    seen = set(path_ais)
    out: list[tuple[str, str]] = []
    for pair in query.split("&"):
        name, eq, raw = pair.partition("=")
        if not eq or not name.isdigit() or not name.isascii():
            continue  # singletons and named parameters (utm_source=...) are not GS1 data
        if name not in table:
            return f"GS1 Digital Link: query parameter {name!r} is numeric but not a known AI"
        value = unquote_plus(raw)
        if not value:
            return f"GS1 Digital Link: AI ({name}) in the query has an empty value"
        if name in seen:
            return f"GS1 Digital Link: AI ({name}) occurs twice"
        for j in range(1, len(path_ais) + 1):
            if valid_path([*path_ais[:j], name, *path_ais[j:]]):
                return (
                    f"GS1 Digital Link: AI ({name}) is a qualifier of ({path_ais[0]}) and belongs in the path"
                )
        seen.add(name)
        if name == "01" and value.isdigit() and len(value) in (8, 12, 13):
            value = value.zfill(14)
        out.append((name, value))
    return out


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
