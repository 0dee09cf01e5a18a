"""Station command barcodes: `CMD:` followed by a command, e.g. `CMD:MODE:INSPECT`."""

from __future__ import annotations

PREFIX = "CMD:"
MODES = ("RECEIVE", "INSPECT", "RESTOCK", "REJECT")


def parse_command(body: str) -> tuple[dict[str, str | None], str | None]:
    """Return `(command, error)`; the command is `{"name", "value"}` even when it is not valid."""
    text = body[len(PREFIX) :].upper()
    name, _, value = text.partition(":")
    command: dict[str, str | None] = {"name": name.lower(), "value": value or None}
    if name == "MODE":
        if value in MODES:
            return command, None
        return command, f"mode {value!r} is not one of {', '.join(MODES)}"
    if not name:
        return command, "command barcode names no command"
    return command, f"unknown station command {name!r}"
