"""An IPP printer's state from `ipptool`'s DISPLAY lines (`printer-state (enum) = idle`). Pure.

`printer-state` is idle, processing or stopped; `printer-state-reasons` says why (RFC 8011
§5.4.12, PWG 5100.9): the first reason we know decides, in the order below; a stopped printer
with none of them is `paused`. Reasons ending `-report` are informational, `-warning` does not
stop printing; only the bare reason and `-error` count."""

from __future__ import annotations

from drivers.printers.status import PrinterStatus

REASONS = (
    ("media-empty", "paper_out"), ("media-needed", "paper_out"), ("media-jam", "error"),
    ("cover-open", "head_open"), ("door-open", "head_open"), ("interlock-open", "head_open"),
    ("marker-supply-empty", "ribbon_out"), ("toner-empty", "ribbon_out"), ("marker-waste-full", "error"),
    ("offline", "offline"), ("shutdown", "offline"), ("connecting-to-device", "offline"),
    ("paused", "paused"), ("moving-to-paused", "paused"), ("spool-area-full", "error"),
)  # fmt: skip


def attributes(output: str) -> dict[str, str]:
    """`name (type) = value` lines as {name: value}."""
    out = {}
    for line in output.splitlines():
        name, sep, value = line.strip().partition(" = ")
        if sep and " (" in name:
            out[name.split(" (", 1)[0]] = value.strip()
    return out


def status_of(attrs: dict[str, str]) -> PrinterStatus:
    state = attrs.get("printer-state", "")
    reasons = [r.strip() for r in attrs.get("printer-state-reasons", "none").split(",")]
    message = attrs.get("printer-state-message", "")
    if state not in ("idle", "processing", "stopped"):
        return PrinterStatus("unknown", f"printer-state {state or 'missing'}")
    detail = ", ".join(r for r in reasons if r != "none") or message or state
    for reason, ours in REASONS:
        for r in reasons:
            if r in (reason, f"{reason}-error"):
                return PrinterStatus(ours, detail)
    if state == "stopped":
        return PrinterStatus("paused", detail)
    return PrinterStatus("ready", detail)
