"""Jittered exponential backoff for reopening devices and reconnecting."""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff_delays(initial: float = 0.1, maximum: float = 5.0, factor: float = 2.0) -> Iterator[float]:
    """Endless delays: `initial`, growing by `factor` up to `maximum`, each with ±20 % jitter
    so that a fleet restarted at once does not retry in lockstep."""
    delay = initial
    while True:
        yield delay * random.uniform(0.8, 1.2)
        delay = min(maximum, delay * factor)
