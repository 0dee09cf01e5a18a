"""Station command barcodes: `CMD:` followed by a command (labels.md kind 1).

`CMD:MODE:{mode}` changes the station mode; the receipt commands (mqtt.md, "Receipts") are
`CMD:DONE`, `CMD:CANCEL`, `CMD:QTY:{n}` (1 to 999 units on the next item scan) and
`CMD:GRADE:{grade}` (one of the configured grades). A command is upper-cased before it is read
(a scanner with caps lock trouble), and an unknown command or value is an error naming it.
"""

from __future__ import annotations

PREFIX = "CMD:"
MODES = ("RECEIVE", "INSPECT", "RESTOCK", "REJECT")
DEFAULT_GRADES = ("A", "B", "C", "SCRAP")
MAX_QTY = 999
_BARE = ("DONE", "CANCEL")


def parse_command(
    body: str, grades: tuple[str, ...] = DEFAULT_GRADES
) -> tuple[dict[str, str | None], str | None]:
    """Return `(command, error)`; the command is `{"name", "value"}` even when it is not valid."""
    text = body[len(PREFIX) :].upper()
    name, sep, value = text.partition(":")
    command: dict[str, str | None] = {"name": name.lower(), "value": value or None}
    if name == "MODE":
        if value in MODES:
            return command, None
        return command, f"mode {value!r} is not one of {', '.join(MODES)}"
    if name in _BARE:
        if sep:
            return command, f"CMD:{name} takes no value (got {value!r})"
        return command, None
    if name == "QTY":
        if value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_QTY:
            command["value"] = str(int(value))
            return command, None
        return command, f"quantity {value!r} is not a whole number from 1 to {MAX_QTY}"
    if name == "GRADE":
        if value in grades:
            return command, None
        return command, f"grade {value!r} is not one of {', '.join(grades)}"
    if not name:
        return command, "command barcode names no command"
    return command, f"unknown station command {name!r}"
