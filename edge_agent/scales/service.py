"""The station's scales as the rest of the agent sees them: the weight a parcel scan takes, the
states for `status` and the page, the alert when one goes offline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from edge_agent.config import AgentConfig
from edge_agent.scales.component import ScaleComponent
from edge_agent.scales.weighing import Latest, grams_of

SHOW_EVERY_S = 0.2
"""The live weight on the page is refreshed at most this often, seconds."""


class Scales:
    """Ports: `config` (the running configuration: `scales`, `receiving.scale`), `alert(kind,
    **fields)` (an `event/alert`), `show(states)` (the page's scales row). A component itself: it
    pushes the live weight to the page while it changes."""

    def __init__(
        self,
        config: Callable[[], AgentConfig],
        alert: Callable[..., None],
        show: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        self.name = "scales"
        self._config = config
        self._alert = alert
        self._show = show
        self.components: dict[str, ScaleComponent] = {}
        self._shown: list[dict[str, Any]] | None = None

    def station_scale(self) -> ScaleComponent | None:
        """The scale that weighs this station's parcels: `receiving.scale`, else the first."""
        config = self._config()
        wanted = config.receiving.scale or (config.scales[0].id if config.scales else None)
        return self.components.get(wanted) if wanted is not None else None

    def latest(self) -> Latest | None:
        """The station scale's last reading; None without a scale. Safe from the writer thread."""
        scale = self.station_scale()
        return scale.latest if scale is not None else None

    async def settled(self, after_ns: int, deadline_ns: int) -> Latest | None:
        scale = self.station_scale()
        return await scale.settled(after_ns, deadline_ns) if scale is not None else None

    def states(self) -> list[dict[str, Any]]:
        """`status`'s `scales` (mqtt.md "Scales"), with what the page shows besides."""
        out = []
        for sid, c in self.components.items():
            r = c.latest.reading
            out.append({"id": sid, "state": c.latest.state, "grams": grams_of(r.grams if r else None),
                        "stable": bool(r and r.stable), "type": c.config.type,
                        "protocol": getattr(c.config, "protocol", "hid"), "readings": c.readings_total})  # fmt: skip
        return out

    def changed(self, latest: Latest, previous: Latest) -> None:
        """A scale's state changed (or a scale that never spoke is found offline)."""
        if latest.state == "offline" and (previous is latest or previous.state != "offline"):
            self._alert("scale", scale=latest.scale, state="offline")
        self._push()

    def _push(self) -> None:
        shown = [{k: s[k] for k in ("id", "state", "grams", "stable")} for s in self.states()]
        if shown != self._shown:
            self._shown = shown
            self._show(shown)

    # --- component -------------------------------------------------------------------------
    async def start(self) -> None:
        pass

    async def run(self) -> None:
        while True:
            await asyncio.sleep(SHOW_EVERY_S)
            self._push()

    async def stop(self) -> None:
        pass
