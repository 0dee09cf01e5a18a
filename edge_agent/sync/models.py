"""The contract's payloads (mqtt.md), named once, for the agent, the simulators and the tests.

Inbound models ignore unknown fields (the contract allows extra fields) and reject wrong types
and missing required fields with errors that name the field.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONTRACT_VERSION = 1
MODES = ("receive", "inspect", "restock", "reject")
OUTCOMES = ("expected", "duplicate", "unknown", "invalid", "command", "item", "extra_item")
PRINT_STATES = ("accepted", "printing", "printed", "failed", "expired", "rejected", "uncertain")
PRINTER_STATES = ("ready", "paper_out", "head_open", "ribbon_out", "paused", "offline", "error", "unknown")


def rfc3339(epoch_ns: int | None = None) -> str:
    """`2026-11-26T08:15:02.123Z`: UTC with milliseconds."""
    ns = time.time_ns() if epoch_ns is None else epoch_ns
    dt = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(ns // 1_000_000) % 1000:03d}Z"


def parse_rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CommandRequest(_Inbound):
    request_id: str = Field(min_length=1, max_length=200)
    args: dict[str, Any] = Field(default_factory=dict)


class DesiredConfig(_Inbound):
    version: int = Field(ge=0)
    config: dict[str, Any]


class ManifestReturn(_Inbound):
    return_id: str = Field(min_length=1, max_length=64)
    order_number: str | None = Field(default=None, max_length=64)
    keys: dict[str, str] = Field(default_factory=dict)
    customer: dict[str, Any] | None = None
    items: list[dict[str, Any]] = Field(default_factory=list)
    bin: str | None = Field(default=None, max_length=64)
    """Extra field: where the parcel goes next at this warehouse, printed on routing slips."""
    weight_g: float | None = Field(default=None, ge=0)
    """What the parcel should weigh, grams (items carry `gtin`, `barcodes`, `serials`, `weight_g`)."""


class ManifestMessage(_Inbound):
    version: int = Field(ge=0)
    base_version: int | None
    chunk: int = Field(default=1, ge=1)
    chunks: int = Field(default=1, ge=1)
    upserts: list[ManifestReturn] = Field(default_factory=list)
    deletes: list[str] = Field(default_factory=list)


class PrintJob(_Inbound):
    job_id: str = Field(min_length=1, max_length=128)
    printer: str = Field(min_length=1, max_length=64)
    copies: int = Field(default=1, ge=1, le=100)
    template: str | None = None
    data: dict[str, Any] | None = None
    zpl: str | None = None
    escpos_b64: str | None = None
    pdf_b64: str | None = None
    image_b64: str | None = None
    not_after: str | None = None


class ReplyError(BaseModel):
    code: str
    message: str


Status = Literal["ok", "error"]


def describe(exc: ValidationError) -> str:
    """One sentence naming each wrong field."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


MAX_JSON_DEPTH = 64


def parse_json(payload: bytes) -> Any:
    """An inbound message's JSON; ValueError (saying what is wrong) for anything that is not JSON
    or nests deeper than `MAX_JSON_DEPTH`, checked before any object is built when the payload has
    enough brackets to be that deep."""
    if too_deep(payload):
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        text = payload.decode("utf-8")  # JSON on the wire is UTF-8 (RFC 8259); no guessing UTF-16
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None


_OPENERS = re.compile(rb"[\[{]{%d}" % (MAX_JSON_DEPTH + 1))


def too_deep(payload: bytes) -> bool:
    """A run of more than MAX_JSON_DEPTH opening brackets (outside strings or not, a bomb is
    refused): one regex scan in C, not a Python loop over a megabyte, and none at all for a
    payload with too few brackets to be that deep."""
    if payload.count(b"[") + payload.count(b"{") <= MAX_JSON_DEPTH:
        return False
    return _OPENERS.search(payload) is not None
