"""Rate limit of `bad_message` alerts (mqtt.md, "Bad input"). Pure: no clock of its own, no I/O.

Theory of operation: per topic filter, a window opens with the first bad message and lasts
`window_s`. The first `limit` bad messages of a window are reported one by one; the rest are only
counted. When a window with suppressed messages ends, one summary reports the count
(`{"kind":"bad_message","topic":FILTER,"suppressed":N}`), and the next bad message opens a new
window. A flood therefore costs at most `limit` + 1 alerts per filter per window, however long
it lasts, and never grows storage without bound.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Window:
    start: float
    reported: int = 0
    suppressed: int = 0
    summary_due: bool = False


class AlertLimiter:
    def __init__(self, limit: int = 10, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._windows: dict[str, _Window] = {}
        self.reported_total = 0
        self.suppressed_total = 0

    def admit(self, key: str, now: float) -> tuple[bool, float | None]:
        """A bad message under `key` at `now`: (report it?, when a summary falls due, if this
        message is the window's first suppressed one: the caller schedules `summaries` then)."""
        window = self._windows.get(key)
        if window is None or now >= window.start + self.window_s:
            window = self._windows[key] = _Window(now)
        if window.reported < self.limit:
            window.reported += 1
            self.reported_total += 1
            return True, None
        window.suppressed += 1
        self.suppressed_total += 1
        if not window.summary_due:
            window.summary_due = True
            return False, window.start + self.window_s
        return False, None

    def summaries(self, now: float) -> list[tuple[str, int]]:
        """(key, suppressed) of every window that has ended with messages left unreported; those
        windows are closed."""
        out = []
        for key, window in list(self._windows.items()):
            if now >= window.start + self.window_s:
                if window.suppressed:
                    out.append((key, window.suppressed))
                del self._windows[key]
        return out

    def counts(self) -> dict[str, int]:
        return {"bad_message_alerts": self.reported_total, "bad_messages_suppressed": self.suppressed_total}
