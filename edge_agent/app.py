"""The controller: builds the components from the configuration, starts, supervises, stops them."""

from __future__ import annotations

import asyncio
import signal

import structlog

from edge_agent import __version__
from edge_agent.config import AgentConfig
from edge_agent.decode import Decoder, Rule
from edge_agent.scanning import ScannerComponent, ScanSink, log_scan
from edge_agent.supervisor import Supervisor


def decoder_for(config: AgentConfig) -> Decoder:
    return Decoder(config.labels.secrets(), [Rule.build(r.name, r.pattern, r.keys) for r in config.rules])


class Agent:
    def __init__(self, config: AgentConfig, sink: ScanSink = log_scan) -> None:
        self.config = config
        self._sink = sink
        self.supervisor = Supervisor()
        self._log = structlog.get_logger("edge_agent.app").bind(
            component="agent", device=config.device.id, site=config.device.site
        )

    async def run(self, stop: asyncio.Event) -> None:
        decoder = decoder_for(self.config)
        for scanner in self.config.scanners:
            self.supervisor.add(ScannerComponent(scanner, decoder, self._sink))
        self._log.info(
            "agent.started",
            version=__version__,
            scanners=[s.id for s in self.config.scanners],
            printers=[p.id for p in self.config.printers],
        )
        try:
            await stop.wait()
        finally:
            await self.supervisor.stop_all()
            self._log.info("agent.stopped")


async def run_until_signalled(agent: Agent) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await agent.run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
