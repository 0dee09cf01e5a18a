"""The controller, and the only composition root: it builds the components from the
configuration, hands each the ports it uses (edge_agent/ports.py, sync/outbound.py,
sync/alerts.py), starts, supervises and stops them, routes incoming MQTT messages and applies
configuration changes without a restart. No other module imports this one but the CLI.

The agent is itself the `Control` port (what fleet commands and desired configuration may ask);
`health.AgentHealth` is the `Health` port (what status, telemetry and the display read)."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import structlog

from edge_agent import __version__
from edge_agent.config import AgentConfig, read_yaml
from edge_agent.decode import Decoded, Decoder, Rule
from edge_agent.display.hub import DisplayHub
from edge_agent.errors import ConfigError
from edge_agent.feedback import Feedback
from edge_agent.fleet import Fleet
from edge_agent.health import AgentHealth
from edge_agent.ports import Station, Stores
from edge_agent.printing.service import PrintService
from edge_agent.printing.worker import PrinterWorker
from edge_agent.receiving.service import ReceivingService
from edge_agent.scales.component import ScaleComponent
from edge_agent.scales.service import Scales
from edge_agent.scan_service import ScanService
from edge_agent.scanning import ScannerComponent
from edge_agent.sdnotify import Notifier, Watchdog
from edge_agent.software import LauncherChannel, SoftwareUpdates
from edge_agent.store import outbox
from edge_agent.store.db import AGENT_DB, AGENT_SCHEMA, open_agent_db, open_manifest_db, set_size_cap
from edge_agent.store.reader import Reader
from edge_agent.store.scans import ScanRecord, ScanRecorder
from edge_agent.store.writer import Writer
from edge_agent.supervisor import Supervisor
from edge_agent.sync import desired
from edge_agent.sync.alerts import Alerts
from edge_agent.sync.link import Inbound, MqttLink, json_bytes
from edge_agent.sync.models import CONTRACT_VERSION, rfc3339
from edge_agent.sync.outbound import Outbound
from edge_agent.sync.publisher import OutboxPublisher
from edge_agent.sync.screen import Screen
from edge_agent.sync.topics import Topics


def decoder_for(config: AgentConfig) -> Decoder:
    rules = [Rule.build(r.name, r.pattern, r.keys) for r in config.rules]
    return Decoder(config.labels.secrets(), rules, config.receiving.grades)


class Agent:
    def __init__(self, config: AgentConfig, config_path: Path | None = None) -> None:
        self.file_config = config
        self.config = config
        self.config_path = config_path
        self.topics = Topics(config.device.site, config.device.id)
        self.station = Station(boot_id=str(uuid.uuid4()), started=time.monotonic(), mode=config.station.mode)
        self.supervisor = Supervisor()
        self.decoder = decoder_for(config)
        self._scanners: dict[str, ScannerComponent] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.notifier = Notifier()
        self.launcher = LauncherChannel()
        self._log = structlog.get_logger("edge_agent.app").bind(
            component="agent", device=config.device.id, site=config.device.site
        )

    # --- construction --------------------------------------------------------------------
    def envelope(self, ts: str | None = None) -> dict[str, Any]:
        return {"v": CONTRACT_VERSION, "device": self.config.device.id, "site": self.config.device.site,
                "ts": ts or rfc3339()}  # fmt: skip

    def _open_storage(self) -> None:
        folder = Path(self.config.storage.path)
        # one message per transaction: a group of snapshot chunks is a burst of writeback that
        # scans' fsyncs wait behind (store/writer.py)
        self.manifest_writer = Writer(lambda: open_manifest_db(folder), "manifest-writer", max_group=1)
        self.manifest_writer.start()
        self.writer = Writer(lambda: open_agent_db(folder, self.config.storage.max_size_mb), "agent-writer")
        self.writer.start()
        self.reader = Reader(folder / AGENT_DB)
        self.manifest_reader = Reader(folder / "manifest.db")
        self.recorder = ScanRecorder(
            folder, self.config.device.id, self.config.device.site, self.config.station.mode,
            lambda: self.config.receiving, self.topics.event_receipt, self._scale_now,
        )  # fmt: skip
        self.stores = Stores(self.writer, self.reader, self.manifest_writer, self.manifest_reader)

    async def _restore_state(self) -> None:
        await self.writer.submit(outbox.release_unready)
        self.station.mode = (await self.writer.submit(self.recorder.mode)).value
        version, overlay = (await self.writer.submit(desired.load_overlay)).value
        if version:
            try:
                self.config = desired.effective_config(self.file_data(), overlay)
                self.station.config_version = version
                self.decoder = decoder_for(self.config)
            except ConfigError as exc:
                self._log.error("config.overlay_invalid", version=version, error=str(exc))
        from edge_agent.store import manifest

        self.station.manifest_version = (await self.manifest_writer.submit(manifest.version)).value

    def current_config(self) -> AgentConfig:
        return self.config

    def file_data(self) -> dict[str, Any]:
        if self.config_path is None:
            return self.file_config.model_dump(mode="json", exclude_none=True)
        data = read_yaml(self.config_path)
        if not isinstance(data, dict):
            raise ConfigError([("", "the configuration must be a mapping of keys")])
        return data

    def decode(self, data: bytes) -> Decoded:
        return self.decoder.decode(data)

    # --- lifecycle -------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        await self.launcher.open(__version__, AGENT_SCHEMA)
        self._open_storage()
        try:
            await self._restore_state()
            self.launcher.health("storage")
            self._compose()
            await self.jobs.recover()
            self.supervisor.add(self.feedback)
            if self.config.display.enabled:
                self._add_display()
            self.supervisor.add(self.link)
            self.supervisor.add(self.publisher)
            self.supervisor.add(self.fleet.telemetry)
            self.supervisor.add(self.software)
            self.supervisor.add(self.receiving)
            self.supervisor.add(self.scales)
            for scale in self.config.scales:
                self._add_scale(scale)
            for printer in self.config.printers:
                self._add_printer(printer.id)
            self.supervisor.add(Watchdog(self.notifier, self.describe))
            for scanner in self.config.scanners:
                self._add_scanner(scanner)
            st = self.station
            self._log.info("agent.started", version=__version__, boot_id=st.boot_id, mode=st.mode,
                           scanners=[s.id for s in self.config.scanners], printers=[p.id for p in self.config.printers],
                           manifest_version=st.manifest_version, config_version=st.config_version)  # fmt: skip
            self._settle()
            self.notifier.ready(self.describe())
            await stop.wait()
        finally:
            await self._shutdown()

    def _compose(self) -> None:
        """Every component, given the ports it uses and nothing else."""
        cfg, config = self.config, self.current_config
        will = json_bytes(
            {**self.envelope(), "online": False, "boot_id": self.station.boot_id, "reason": "lost"}
        )
        self.loop = asyncio.get_running_loop()
        self.link = MqttLink(cfg.mqtt, self.topics, will, self._on_message, self._on_connected, self._on_puback,
                             self._screen)  # fmt: skip
        self.publisher = OutboxPublisher(
            self.link, self.reader, self.writer, cfg.storage.retention_days * 86400.0
        )
        self.out = Outbound(cfg.device, self.topics, self.writer, self.link, self.publisher)
        self.alerts = Alerts(self.out, Screen(), self.spawn, self.loop)
        self.display_hub = DisplayHub({"site": cfg.device.site, "device": cfg.device.id})
        self.scales = Scales(
            config, lambda kind, **f: self.spawn(self.alerts.alert(kind, **f), f"alert-{kind}"),
            lambda states: self.display_hub.set("scales", states),
        )  # fmt: skip
        self.scans = ScanService(
            self.writer, self.recorder, self.topics.event_scan, self.publisher.wake, self.set_mode,
            self._after_scan, self._storage_changed, Path(cfg.storage.path), self.publisher.hand_over,
            self.scales.settled, self._after_weighed,
        )  # fmt: skip
        self.jobs = PrintService(self.out, self.alerts, self.stores, self.station, config)
        self.health = AgentHealth(config, self.station, self.supervisor, self.link, self.publisher, self.scans,
                                  self.jobs, self.scales, self._scanners, self.display_hub)  # fmt: skip
        self.software = SoftwareUpdates(self.launcher, self.out, __version__)
        updates = {"update": self.software.cmd_update, "rollback": self.software.cmd_rollback}
        self.fleet = Fleet(
            self.out, self.alerts, self.stores, self.station, config, self.health, self, self.jobs, updates
        )
        self.display_hub.set("mode", self.station.mode)
        self.feedback = Feedback(config, self.jobs)
        self.receiving = ReceivingService(
            self.writer, self.recorder.close_idle, self.publisher.wake, self.display_hub.show_receipt,
            self.jobs.receipt_print, self.alerts.alert, self.spawn, lambda: self.config.receiving,
        )  # fmt: skip

    def _settle(self) -> None:
        """Load the decoder's tables now (the courier set, the GS1 AI table), not at the first scan,
        then move everything built so far out of the garbage collector's sight: a full collection
        walks only what is new since, not the tables and models of a whole program (a 150 ms pause
        under a flood of messages, tests/test_flood.py)."""
        for sample in (
            "RR123456785SE",
            "]C10012345678901234560",
            "https://x/01/1",
            "[)>\x1e06\x1dK1\x1e\x04",
        ):
            self.decoder.decode(sample)
        gc.collect()
        gc.freeze()

    def _screen(self, message: Inbound) -> bool:
        return self.fleet.screen(message)

    def describe(self) -> str:
        """One line for systemd's STATUS=."""
        link = "connected" if self.link_connected() else "not connected"
        scanners = sum(1 for c in self._scanners.values() if c.connected)
        scans = self.scans.scans_total if hasattr(self, "scans") else 0
        state = self.scans.storage_state if hasattr(self, "scans") else "ok"
        full = (
            f"STORAGE {state.upper().replace('_', ' ')}: new scans are not stored; " if state != "ok" else ""
        )
        return (f"{full}broker {link}; {scanners}/{len(self._scanners)} scanners; {scans} scans; "
                f"mode {self.station.mode}; manifest v{self.station.manifest_version}")  # fmt: skip

    async def _shutdown(self) -> None:
        self.notifier.stopping()
        for name in list(self._scanners):
            await self.supervisor.remove(self._scanners.pop(name).name)
        if hasattr(self, "scans"):
            await self.scans.stop_weighing()
            await self._drain(1.0)
        if hasattr(self, "scales"):
            for name in list(self.scales.components):
                await self.supervisor.remove(self.scales.components.pop(name).name)
        if hasattr(self, "link"):
            offline = {
                **self.envelope(),
                "online": False,
                "boot_id": self.station.boot_id,
                "reason": "shutdown",
            }
            await self.link.goodbye(json_bytes(offline))
        await self.supervisor.stop_all()
        if hasattr(self, "jobs"):
            self.jobs.documents.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.reader.close()
        self.manifest_reader.close()
        self.writer.stop()
        self.manifest_writer.stop()
        self.recorder.close()
        self.notifier.close()
        self.launcher.close()
        self._log.info("agent.stopped")

    async def _drain(self, timeout: float) -> None:
        """At a clean stop, while connected: a moment for what is queued to reach the broker."""
        deadline = time.monotonic() + timeout
        while self.link_connected() and time.monotonic() < deadline:
            if (await self.reader.read(outbox.depth))[0] == 0:
                return
            await asyncio.sleep(0.05)

    def _add_scanner(self, scanner: Any) -> None:
        component = ScannerComponent(scanner, self.decode, self.scans.record)
        self._scanners[scanner.id] = component
        self.supervisor.add(component)

    def _add_scale(self, scale: Any) -> None:
        component = ScaleComponent(scale, self.scales.changed)
        self.scales.components[scale.id] = component
        self.supervisor.add(component)

    def _add_printer(self, printer_id: str) -> None:
        worker = PrinterWorker(self.jobs, printer_id)
        self.jobs.workers[printer_id] = worker
        self.supervisor.add(worker)

    def _add_display(self) -> None:
        from edge_agent.display.server import DisplayServer

        self.supervisor.add(
            DisplayServer(self.display_hub, self.current_config, self.reader, self.health, self.station)
        )

    def link_connected(self) -> bool:
        return hasattr(self, "link") and self.link.connected.is_set()

    def _scale_now(self) -> Any:
        """The station scale's last reading, for the scan recorder (its scales come after it)."""
        return self.scales.latest() if hasattr(self, "scales") else None

    # --- Control: what fleet commands may ask ----------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- configuration -------------------------------------------------------------------
    async def apply_config(self, new: AgentConfig) -> None:
        """Hot apply: scanners added, removed or changed; decoder keys and rules; intervals."""
        old = self.config
        self.config = new
        self.decoder = decoder_for(new)
        if new.storage.max_size_mb != old.storage.max_size_mb:
            await self.writer.submit(lambda c: set_size_cap(c, new.storage.max_size_mb))
            self._log.info("storage.cap_changed", max_size_mb=new.storage.max_size_mb)
        await self._resync("scanner", old.scanners, new.scanners, self._scanners, self._add_scanner)
        await self._resync("scale", old.scales, new.scales, self.scales.components, self._add_scale)
        await self._resync(
            "printer", old.printers, new.printers, self.jobs.workers, lambda p: self._add_printer(p.id)
        )
        if new.display != old.display:
            await self.supervisor.remove("display")
            if new.display.enabled:
                self._add_display()
            self._log.info("display.reconfigured", enabled=new.display.enabled, port=new.display.port)

    async def _resync(
        self, kind: str, old: list[Any], new: list[Any], running: dict[str, Any], add: Any
    ) -> None:
        """Devices removed or changed are stopped, new or changed ones started."""
        wanted = {d.id: d for d in new}
        for device in old:
            if wanted.get(device.id) != device and (component := running.pop(device.id, None)) is not None:
                await self.supervisor.remove(component.name)
                self._log.info(f"{kind}.removed", **{kind: device.id})
        for did, device in wanted.items():
            if did not in running:
                add(device)
                self._log.info(f"{kind}.added", **{kind: did})

    async def change_mode(self, mode: str) -> None:
        def store(conn: Any) -> dict[str, Any] | None:
            previous = self.recorder.mode(conn)
            outbox.set_meta(conn, "mode", mode)
            return self.recorder.close_open(conn, "mode", rfc3339()) if previous != mode else None

        closed = (await self.writer.submit(store)).value
        self.set_mode(mode)
        if closed is not None:
            self.receiving.closed([closed], None)

    def set_mode(self, mode: str) -> None:
        self.station.mode = mode
        self.display_hub.set("mode", mode)

    def _storage_changed(self, state: str, detail: str) -> None:
        """Storage refused a scan (full, read-only, I/O error) or took one again: tell people at
        once, not via the outbox (which may be what cannot be written)."""
        self.alerts.alert_now("storage", state=state, detail=detail)
        self.notifier.status(self.describe())

    def _after_weighed(self, record: ScanRecord) -> None:
        """A held parcel event got its weight: the page and a light or heavy parcel's feedback."""
        try:
            self.display_hub.weighed(record.event_id, record.payload.get("weight"), record.receipt)
            self.feedback.on_weight(record)
        except Exception as exc:
            self._log.exception("feedback.failed", event_id=record.event_id, error=repr(exc))

    def _after_scan(self, record: ScanRecord) -> None:
        """Feedback beyond the log: the station display, the configured buzzer or command, and a
        routing slip for an expected return, where configured. The scan is stored already: a
        failure here is logged and must not reach the scanner."""
        try:
            self.display_hub.scan(record.payload, weighing=record.weigh_pending)
            self.receiving.after_scan(record)
            self.feedback.on_scan(record)
        except Exception as exc:
            self._log.exception("feedback.failed", event_id=record.event_id, error=repr(exc))
        if record.outcome == "expected" and record.ret and self.config.printing.routing_slip_printer:
            self.spawn(
                self.jobs.routing_slip(record, self.config.printing.routing_slip_printer), "routing-slip"
            )

    # --- MQTT ----------------------------------------------------------------------------
    async def _on_connected(self, session_present: bool) -> None:
        await self.fleet.publish_presence()
        self.launcher.health("online")
        await self.software.publish()
        self.publisher.on_connected()
        if self.station.manifest_version == 0:
            await self.fleet.request_manifest(0)

    def _on_puback(self, mid: int) -> None:
        """In paho's thread (see OutboxPublisher)."""
        self.publisher.puback(mid)

    def _on_message(self, message: Inbound) -> None:
        self.spawn(self._handle(message), name=f"inbound-{message.topic}")

    async def _handle(self, message: Inbound) -> None:
        try:
            await self.fleet.dispatch(message)
        except Exception as exc:
            self._log.exception("inbound.failed", topic=message.topic, error=repr(exc))
        finally:
            self.link.ack(message)


async def run_until_signalled(agent: Agent) -> None:
    # Scans wait for the GIL behind whatever another thread is doing (paho's network thread under a
    # flood of messages, the SQLite writer): hand it over every 0.5 ms instead of every 5 ms, so a
    # scan's turn comes within a millisecond (bench/flood.py: p50 21 -> see closing notes).
    sys.setswitchinterval(0.0005)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await agent.run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
