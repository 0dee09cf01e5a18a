"""The base of the configuration tree: the model every section derives from, shared patterns."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
KID_PATTERN = re.compile(r"^[0-9A-Z]{1,8}$")
KEY_NAMES = ("return_id", "order_number", "tracking_number", "sscc", "gtin", "license_plate")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


def split_server(server: str) -> tuple[str, int]:
    """`host:port`, `[v6addr]:port`, or a bare host (port 1883) → (host, port)."""
    text = server.strip()
    port = "1883"
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise ValueError(f"{server!r} is not [address]:port")
        port = rest[1:] or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" in text:
        raise ValueError(f"{server!r}: write an IPv6 address as [address]:port")
    else:
        host = text
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{server!r} is not host:port with a port from 1 to 65535")
    return host, int(port)


def _server(value: str) -> str:
    split_server(value)
    return value
