"""The `Health` port (ports.py): what status replies, telemetry and the station page read of the
running agent, gathered from the components that know it. Built by the controller once they
exist; it holds them, and nothing holds it but its readers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge_agent.config import AgentConfig
from edge_agent.display.hub import DisplayHub
from edge_agent.ports import Station
from edge_agent.printing.service import PrintService
from edge_agent.scales.service import Scales
from edge_agent.scan_service import ScanService
from edge_agent.scanning import ScannerComponent
from edge_agent.supervisor import Supervisor
from edge_agent.sync.link import MqttLink
from edge_agent.sync.publisher import OutboxPublisher


class AgentHealth:
    def __init__(
        self,
        config: Callable[[], AgentConfig],
        station: Station,
        supervisor: Supervisor,
        link: MqttLink,
        publisher: OutboxPublisher,
        scans: ScanService,
        jobs: PrintService,
        scales: Scales,
        scanners: dict[str, ScannerComponent],
        display_hub: DisplayHub,
    ) -> None:
        self._config = config
        self._station = station
        self._supervisor = supervisor
        self._link = link
        self._publisher = publisher
        self._scans = scans
        self._jobs = jobs
        self._scales = scales
        self._scanners = scanners
        self._hub = display_hub

    def display_status(self) -> dict[str, Any]:
        """Where the station page is served and how many screens watch it."""
        address = getattr(self._supervisor.components.get("display"), "address", None)
        return {
            "enabled": self._config().display.enabled,
            "url": f"http://{address[0]}:{address[1]}/" if address else None,
            "pages": self._hub.watchers,
        }

    def printer_states(self) -> list[dict[str, Any]]:
        return self._jobs.states()

    def scanner_states(self) -> list[dict[str, Any]]:
        return [
            {"id": sid, "type": c.config.type, "connected": c.connected, "scans": c.scans_total}
            for sid, c in self._scanners.items()
        ]

    def scale_states(self) -> list[dict[str, Any]]:
        return self._scales.states()

    def broker_status(self) -> dict[str, Any]:
        return {
            "connected": self._link.connected.is_set(),
            "server": self._link.server,
            "servers": ["{}:{}".format(*e) for e in self._config().mqtt.endpoints()],
            "connects": self._link.connects,
            "moves": self._link.moves,
        }

    def storage_status(self) -> tuple[str, str | None]:
        return self._scans.storage_state, self._scans.storage_detail

    def scan_latency_us(self, q: float) -> int | None:
        return self._scans.percentile(q)

    def clock_synced(self) -> bool:
        return self._scans.clock.synced

    def counters(self) -> dict[str, Any]:
        return {
            "scans_total": self._scans.scans_total,
            "prints_total": self._station.prints_total,
            "published": self._publisher.published,
            "acked": self._publisher.acked_total,
            "store_failures": self._scans.store_failures,
            "restarts": dict(self._supervisor.restarts),
        }
