"""The base of the configuration tree: the model every section derives from, shared patterns."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
KID_PATTERN = re.compile(r"^[0-9A-Z]{1,8}$")
KEY_NAMES = ("return_id", "order_number", "tracking_number", "sscc", "gtin", "license_plate")


class _Model(BaseModel):
    # The attribute docstrings are for people reading the tree; pydantic need not parse this
    # source at every start to copy them into descriptions nobody reads (36 ms of start-up CPU).
    model_config = ConfigDict(extra="forbid", frozen=True)


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


def _public_key(value: str) -> str:
    text = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise ValueError("must be an Ed25519 public key: 64 hex digits (edge-fleet release keygen prints it)")
    return text


class UpdateConfig(_Model):
    """Software updates through `edge-agent launch` (mqtt.md, "Software update"). Only this file
    sets it: no desired configuration can, whatever `remote_config.allow` says."""

    public_keys: list[Annotated[str, AfterValidator(_public_key)]] = Field(default_factory=list)
    """Ed25519 public keys (hex) whose signatures a release bundle may carry; none: updates are
    refused (`updates_disabled`)."""
    releases_dir: Path = Path("/opt/edge-agent/releases")
    """Folder of the installed releases, the `current` link and the launcher's state."""
    health_timeout_s: float = Field(default=120.0, gt=0, le=3600)
    """How long a new release has to start, open its storage and publish its state online, seconds;
    past it the previous release is started again."""
    max_bundle_mb: int = Field(default=300, ge=1, le=4096)
    """Largest bundle downloaded, megabytes; a longer download is cut off and refused."""
    min_free_mb: int = Field(default=200, ge=0)
    """Free space kept on the releases' file system after a bundle and its installation, megabytes:
    an update that would leave less is refused before (and while) it downloads."""
    keep_releases: int = Field(default=3, ge=2, le=20)
    """Installed releases kept (the current and previous ones always are)."""
    download_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    """Longest wait for the next bytes of a download, seconds."""
