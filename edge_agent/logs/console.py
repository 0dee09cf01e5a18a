"""The operator's console: what a person watching `edge-agent run` (or `edge-sim demo`) on a
terminal reads.

Theory of operation: a scan is the event an operator looks for, so `scan.stored` is one line no
wider than the terminal (its width read at each line, so a resized window is followed): local
time, scanner, the outcome in its colour, the payload (control characters shown, cut with `…`
where it must be), the order or return, the latency and `seq`. The parcel's weight, which follows
its scan once the pan has settled (`scan.weighed`), is one line too, its check in colour (a light
or heavy parcel red), and so is a receipt's close.
Every other event falls through to structlog's own `ConsoleRenderer` (key=value), with the
same local time column. Colours are
structlog's (`structlog.dev`), and only on a terminal; JSON lines are for everything else.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import MutableMapping
from typing import Any, TextIO

from structlog import dev

_OUTCOME_STYLE = {
    "expected": dev.GREEN,
    "item": dev.GREEN,
    "duplicate": dev.YELLOW,
    "extra_item": dev.YELLOW,
    "unknown": dev.MAGENTA,
    "invalid": dev.RED,
    "command": dev.CYAN,
}
_CHECK = {"ok": ("WEIGHT OK", dev.GREEN), "light": ("LIGHT", dev.RED), "heavy": ("HEAVY", dev.RED),
          "unknown": ("WEIGHT ?", dev.DIM)}  # fmt: skip
_VERDICT_STYLE = {"complete": dev.GREEN, "short": dev.YELLOW, "extra": dev.YELLOW, "cancelled": dev.DIM}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_OUTCOME_WIDTH = 10  # "extra_item"


def _visible(text: str) -> int:
    return len(_ANSI.sub("", text))


def printable(raw: str) -> str:
    """A payload as it can be shown on one line: GS as `<GS>`, other control bytes as `·`."""
    return _CONTROL.sub(lambda m: "<GS>" if m.group() == "\x1d" else "·", raw)


def _clock(ts: Any) -> str:
    try:
        return datetime.datetime.fromisoformat(str(ts)).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return "--:--:--"


class ConsoleLines:
    """structlog's last processor on a terminal: one line for a scan, one for a receipt."""

    def __init__(self, stream: TextIO, colors: bool) -> None:
        self._stream = stream
        self._colors = colors
        self._fallback = dev.ConsoleRenderer(colors=colors, sort_keys=False)

    def _width(self) -> int:
        try:
            return max(40, os.get_terminal_size(self._stream.fileno()).columns)
        except (OSError, ValueError, AttributeError):
            return 80

    def _paint(self, style: str, text: str) -> str:
        return f"{style}{text}{dev.RESET_ALL}" if self._colors and style else text

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        kind = event.get("event")
        if kind == "scan.stored" and "seq" in event:
            return self._scan(event)
        if kind == "receipt.closed" and "return_id" in event:
            return self._receipt(event)
        if kind == "scan.weighed" and "seq" in event:
            return self._weighed(event)
        if "timestamp" in event:  # the same local clock column as the scan lines
            event["timestamp"] = _clock(event["timestamp"])
        return str(self._fallback(logger, name, event))

    def _fit(self, head: list[str], payload: str, tail: list[str]) -> str:
        """`head payload tail` in the terminal's width: the payload gives way, then the tail."""
        width = self._width()
        fixed = " ".join(head + tail)
        room = width - _visible(fixed) - (2 if tail else 1)
        if room >= 8 or not tail:
            if len(payload) > max(room, 1):
                payload = payload[: max(room - 1, 0)] + "…"
            return " ".join([*head, payload, *tail]) if payload else " ".join(head + tail)
        # a narrow terminal: the payload's first characters, then what still fits of the tail
        line = " ".join([*head, payload[:8] + "…"])
        for part in tail:
            if _visible(line) + 1 + _visible(part) > width:
                break
            line += " " + part
        return line

    def _scan(self, e: MutableMapping[str, Any]) -> str:
        outcome = str(e.get("outcome") or "?")
        head = [
            self._paint(dev.DIM, _clock(e.get("timestamp"))),
            str(e.get("scanner") or "-"),
            self._paint(_OUTCOME_STYLE.get(outcome, dev.BRIGHT), outcome.upper().ljust(_OUTCOME_WIDTH)),
        ]
        tail = []
        order, ret = e.get("order_number"), e.get("return_id")
        if order or ret:
            tail.append(self._paint(dev.BRIGHT, str(order or ret)))
        elif e.get("error"):
            tail.append(self._paint(dev.RED, f"({e['error']})"))
        latency = e.get("latency_us")
        if isinstance(latency, int):
            tail.append(f"{latency / 1000:.1f} ms")
        tail.append(self._paint(dev.DIM, f"#{e['seq']}"))
        return self._fit(head, printable(str(e.get("raw") or "")), tail)

    def _receipt(self, e: MutableMapping[str, Any]) -> str:
        verdict = str(e.get("verdict") or ("complete" if e.get("complete") else "short"))
        head = [
            self._paint(dev.DIM, _clock(e.get("timestamp"))),
            "receipt",
            self._paint(_VERDICT_STYLE.get(verdict, dev.BRIGHT), verdict.upper().ljust(_OUTCOME_WIDTH)),
        ]
        counts = f"{e.get('received', 0)}/{e.get('expected', 0)} items"
        if e.get("extra"):
            counts += f" +{e['extra']} extra"
        tail = [self._paint(dev.BRIGHT, str(e.get("order_number") or e.get("return_id"))), counts,
                f"by {e.get('closed_by')}", self._paint(dev.DIM, f"#{e.get('receipt_seq')}")]  # fmt: skip
        return self._fit(head, "", tail)

    def _weighed(self, e: MutableMapping[str, Any]) -> str:
        check = str(e.get("check") or "unknown")
        label, style = _CHECK.get(check, (check.upper(), dev.BRIGHT))
        head = [
            self._paint(dev.DIM, _clock(e.get("timestamp"))),
            str(e.get("scanner") or "-"),
            self._paint(style, label.ljust(_OUTCOME_WIDTH)),
        ]
        grams, expected = e.get("grams"), e.get("expected_g")
        weight = "no stable weight" if grams is None else f"{round(grams)} g"
        if expected is not None:
            weight += f", expected {round(expected)} g"
        if check in ("light", "heavy"):
            weight += ": check the contents"
        seq = self._paint(dev.DIM, f"#{e['seq']}")
        waited = e.get("waited_ms")
        if isinstance(waited, int):  # the wait is what gives way first on a narrow terminal
            full = [*head, weight, f"(waited {waited} ms)", seq]
            if _visible(" ".join(full)) <= self._width():
                return " ".join(full)
        return self._fit(head, weight, [seq])
