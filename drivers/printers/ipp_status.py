"""An IPP printer's state from `ipptool`'s DISPLAY lines (`printer-state (enum) = idle`). Pure.

`printer-state` is idle, processing or stopped; `printer-state-reasons` says why (RFC 8011
§5.4.12, PWG 5100.9): the first reason we know decides, in the order below; a stopped printer
with none of them is `paused`. Reasons ending `-report` are informational, `-warning` does not
stop printing; only the bare reason and `-error` count. But a printer that reports media empty
(at any severity: CUPS's own ippeveprinter says `media-empty-report` when a tray is set to 0
sheets) while no tray has paper left (`media-ready` holds nothing, or every tray whose level it
knows is at 0, the `auto` source aside) is `paper_out`: the next job would not print. One empty
tray beside a full one (a by-pass tray) is not."""

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


def _no_paper(attrs: dict[str, str]) -> bool:
    if attrs.get("media-ready") == "no-value":
        return True
    levels = []
    for tray in attrs.get("printer-input-tray", "").split(","):
        fields = dict(part.split("=", 1) for part in tray.split(";") if "=" in part)
        level = fields.get("level", "")
        if fields.get("name") != "auto" and level.lstrip("-").isdigit() and int(level) >= 0:
            levels.append(int(level))  # -2 unknown, -3 "some"
    return bool(levels) and not any(levels)


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
    if any(r.startswith(("media-empty", "media-needed")) for r in reasons) and _no_paper(attrs):
        return PrinterStatus("paper_out", f"{detail}: no tray has paper")
    if state == "stopped":
        return PrinterStatus("paused", detail)
    return PrinterStatus("ready", detail)
