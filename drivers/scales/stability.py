"""Stability for a scale without a flag of its own: N readings in a row within a tolerance of
each other (MT-SICS's own USTB rule is a tolerance held for a time;
N readings at the scale's update rate is the same idea without a clock). Pure."""

from __future__ import annotations

from collections import deque

from drivers.scales.reading import Reading


class Stabilizer:
    def __init__(self, count: int = 3, tolerance_g: float = 2.0) -> None:
        self._count = count
        self._tolerance_g = tolerance_g
        self._recent: deque[float] = deque(maxlen=count)

    def feed(self, reading: Reading) -> Reading:
        """The reading, stable when the scale says so or, for a scale that does not say (a bare
        weight line), when the last `count` weights agree. A scale that says "in motion" is
        believed: its own filter knows more than three numbers do."""
        if reading.grams is None or reading.state not in ("ok", "motion"):
            self._recent.clear()
            return reading
        self._recent.append(reading.grams)
        if reading.flagged:
            return reading
        agreed = (
            len(self._recent) == self._count and max(self._recent) - min(self._recent) <= self._tolerance_g
        )
        if agreed:
            return Reading("ok", reading.grams, True, reading.detail, flagged=False)
        return Reading("motion", reading.grams, False, reading.detail, flagged=False)
