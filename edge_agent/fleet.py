"""What fleet admins and the central system see and steer: presence, telemetry, commands,
desired configuration, the manifest feed, alerts, and the handling of bad input."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from pydantic import ValidationError

from edge_agent import __version__
from edge_agent.config import AgentConfig
from edge_agent.errors import ConfigError
from edge_agent.ports import Control, Health, Printing, Station, Stores
from edge_agent.printing.errors import JobRejected
from edge_agent.store import manifest, outbox, receipts
from edge_agent.store.db import fsync_files
from edge_agent.sync import desired
from edge_agent.sync.alerts import Alerts
from edge_agent.sync.commands import CommandError, CommandService, Handler, require
from edge_agent.sync.link import Inbound
from edge_agent.sync.models import MODES, DesiredConfig, describe, parse_json, rfc3339
from edge_agent.sync.outbound import Outbound
from edge_agent.sync.screen import screen

REPLAY_MAX = 100_000


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class Telemetry:
    """Health figures every `telemetry_interval_s`, QoS 0, only while connected (not stored)."""

    def __init__(self, fleet: Fleet) -> None:
        self.name = "telemetry"
        self._fleet = fleet

    async def start(self) -> None:
        pass

    async def run(self) -> None:
        fleet = self._fleet
        while True:
            await asyncio.sleep(fleet.config().telemetry_interval_s)
            if fleet.out.connected:
                fleet.out.send_now(fleet.out.topics.telemetry, await fleet.telemetry_payload(), qos=0)

    async def stop(self) -> None:
        pass


class Fleet:
    """Ports: `out` (send), `alerts`, `stores`, `station` (mode, versions), `config` (the running
    configuration), `health` (what status shows), `control` (apply a configuration, change mode),
    `printing` (test prints, reprints, incoming jobs); `more`: commands other components answer
    (software updates)."""

    def __init__(
        self, out: Outbound, alerts: Alerts, stores: Stores, station: Station, config: Callable[[], AgentConfig],
        health: Health, control: Control, printing: Printing, more: Mapping[str, Handler] | None = None,
    ) -> None:  # fmt: skip
        self.out = out
        self.alerts = alerts
        self.stores = stores
        self.station = station
        self.config = config
        self.health = health
        self.control = control
        self.printing = printing
        self.telemetry = Telemetry(self)
        self._last_request: tuple[int, float] | None = None
        handlers = {
            "ping": self.cmd_ping,
            "status": self.cmd_status,
            "set_mode": self.cmd_set_mode,
            "replay_events": self.cmd_replay_events,
            "manifest_resync": self.cmd_manifest_resync,
            "reload_config": self.cmd_reload_config,
            "test_print": self.cmd_test_print,
            "reprint": self.cmd_reprint,
            **(more or {}),
        }
        self.commands = CommandService(handlers, self._reply, out.topics.cmd_reply, self._reply_now)
        self._log = structlog.get_logger("edge_agent.fleet").bind(component="fleet")

    # --- outbound --------------------------------------------------------------------------
    async def publish_presence(self) -> None:
        station, config = self.station, self.config()
        payload = {
            **self.out.envelope(),
            "online": True,
            "boot_id": station.boot_id,
            "agent_version": __version__,
            "config_version": station.config_version,
            "scanners": [s.id for s in config.scanners],
            "printers": [p.id for p in config.printers],
            "scales": [s.id for s in config.scales],
            "manifest_version": station.manifest_version,
            "mode": station.mode,
            "clock_synced": self.health.clock_synced(),
            "broker": self.health.broker_status()["server"],
        }
        # not connected: the next CONNACK publishes it again
        self.out.send_now(self.out.topics.state, payload, qos=1, retain=True)

    async def request_manifest(self, have: int) -> None:
        now = time.monotonic()
        if self._last_request and self._last_request[0] == have and now - self._last_request[1] < 5.0:
            return  # one request per version is enough; the chunks of a delta would each ask
        self._last_request = (have, now)
        await self.out.publish(
            self.out.topics.manifest_request, {**self.out.envelope(), "have_version": have}
        )
        self._log.info("manifest.requested", have_version=have)

    async def _reply_now(self, topic: str, payload: dict[str, Any], correlation: bytes | None) -> None:
        """The reply to a request that could not be read: sent at once with QoS 0, not stored, so
        a flood of bad requests cannot queue in front of scan events (it is answered while the
        link that brought it is up)."""
        self.out.send_now(topic, {**self.out.envelope(), **payload}, qos=0, correlation=correlation)

    async def _reply(self, topic: str, payload: dict[str, Any], correlation: bytes | None) -> None:
        await self.out.publish(
            topic, {**self.out.envelope(), **payload}, kind="reply", correlation=correlation
        )

    async def telemetry_payload(self) -> dict[str, Any]:
        config, health = self.config(), self.health
        depth, oldest = await self.stores.reader.read(outbox.depth)
        try:
            disk_free = shutil.disk_usage(config.storage.path).free
        except OSError:
            disk_free = 0
        storage, _ = health.storage_status()
        broker = health.broker_status()
        return {
            "ts": rfc3339(),
            "uptime_s": int(time.monotonic() - self.station.started),
            "outbox_depth": depth,
            "oldest_unsent_s": round(oldest, 3) if oldest is not None else 0,
            "scans_total": health.counters()["scans_total"],
            "prints_total": self.station.prints_total,
            "scan_latency_us_p50": health.scan_latency_us(0.5) or 0,
            "scan_latency_us_p99": health.scan_latency_us(0.99) or 0,
            "rss_bytes": _rss_bytes(),
            "storage_full": storage == "full",
            "storage": storage,
            "disk_free_bytes": disk_free,
            "device": config.device.id,
            "site": config.device.site,
            "broker": broker["server"],
            "broker_moves": broker["moves"],
            **self.alerts.screening.counts(),
        }

    # --- inbound ---------------------------------------------------------------------------
    async def dispatch(self, message: Inbound) -> None:
        """A message that passed `screen` (size, JSON, shape): its handler checks the rest."""
        topics = self.out.topics
        name = topics.command_name(message.topic)
        if name is not None:
            await self.commands.handle(name, message.payload, message.response_topic, message.correlation)
        elif message.topic == topics.config_desired:
            await self.on_desired(message.payload)
        elif message.topic == topics.manifest:
            await self.on_manifest(message.payload)
        elif message.topic == topics.job_print:
            await self.on_job(message.payload)
        else:
            await self.alerts.bad_message(message.topic, "no handler for this topic")

    def screen(self, message: Inbound) -> bool:
        """In paho's thread: True when the message is bad and has been dealt with here (sync/screen.py)."""
        topics = self.out.topics
        verdict = screen(topics, message.topic, message.payload, self.config().mqtt.max_payload_bytes)
        if verdict.ok:
            return False
        if verdict.command is None:
            self.alerts.bad_message_threadsafe(message.topic, verdict.error or "bad message")
            return True
        screening = self.alerts.screening
        n = screening.bad_request()
        # nobody can match a reply without request id or correlation data: in a flood only as
        # many are answered as alerts would be sent (10 a minute), the rest are counted
        unmatchable = verdict.request_id is None and message.correlation is None
        if unmatchable and not screening.answer_unmatchable(topics, message.topic):
            return True
        code = "too_large" if verdict.error and "max_payload_bytes" in verdict.error else "bad_request"
        reply = {
            "request_id": verdict.request_id,
            "status": "error",
            "error": {"code": code, "message": verdict.error},
        }
        topic = message.response_topic or topics.cmd_reply(verdict.command)
        self.out.send_now(topic, {**self.out.envelope(), **reply}, qos=0, correlation=message.correlation)
        if n <= 10 or n % 1000 == 0:  # a flood leaves a line per thousand in the log
            self._log.warning(
                "command.bad_request", command=verdict.command, error=reply["error"], bad_requests=n
            )
        return True

    async def on_job(self, payload: bytes) -> None:
        await self.printing.on_message(payload)

    async def on_manifest(self, payload: bytes) -> None:

        result = (
            await self.stores.manifest_writer.submit(lambda conn: manifest.apply_raw(conn, payload))
        ).value
        if isinstance(result, str):
            await self.alerts.bad_message(self.out.topics.manifest, result)
            return
        if result.status in ("applied", "snapshot_applied"):
            # durable before anyone is told: the central system stops resending once the version
            # is reported, and a dock that lost it to a power cut matches nothing while offline
            await self.stores.manifest_writer.submit(fsync_files)
        self.station.manifest_version = result.version
        if result.status == "out_of_step":
            self._log.info("manifest.out_of_step", error=result.error, have_version=result.version)
            await self.request_manifest(result.version)
        elif result.status in ("applied", "snapshot_applied"):
            self._log.info("manifest.applied", status=result.status, version=result.version, rows=result.rows)
        elif result.status == "rejected":
            await self.alerts.bad_message(self.out.topics.manifest, result.error or "rejected")

    async def on_desired(self, payload: bytes) -> None:
        topics, station = self.out.topics, self.station
        try:
            request = DesiredConfig.model_validate_json(payload)
        except ValidationError as exc:
            version = _version_of(payload)
            await self.alerts.bad_message(topics.config_desired, describe(exc))
            if version is not None:
                await self._report(version, "rejected", describe(exc))
            return
        if request.version <= station.config_version:
            self._log.info("config.desired_ignored", version=request.version, applied=station.config_version)
            return
        try:
            new = desired.effective_config(self.control.file_data(), request.config)
        except ConfigError as exc:
            await self._report(request.version, "rejected", str(exc))
            return
        await self.stores.writer.submit(lambda c: desired.save_overlay(c, request.version, request.config))
        await self.control.apply_config(new)
        station.config_version = request.version
        self._log.info("config.applied", version=request.version)
        await self._report(request.version, "applied", None)
        await self.publish_presence()

    async def _report(self, version: int, status: str, error: str | None) -> None:
        payload = {**self.out.envelope(), "version": version, "status": status, "error": error}
        await self.out.publish(self.out.topics.config_reported, payload, retain=True, kind="reported")

    # --- commands --------------------------------------------------------------------------
    async def cmd_ping(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"uptime_s": int(time.monotonic() - self.station.started), "boot_id": self.station.boot_id}

    async def cmd_status(self, args: dict[str, Any]) -> dict[str, Any]:
        health, station = self.health, self.station
        depth, oldest = await self.stores.reader.read(outbox.depth)
        returns = (await self.stores.manifest_writer.submit(manifest.count)).value
        storage, detail = health.storage_status()
        return {
            "outbox_depth": depth,
            "oldest_unsent_s": round(oldest, 3) if oldest is not None else 0,
            "scanners": health.scanner_states(),
            "printers": health.printer_states(),
            "scales": health.scale_states(),
            "manifest_version": station.manifest_version,
            "manifest_returns": returns,
            "config_version": station.config_version,
            "mode": station.mode,
            "storage_full": storage == "full",
            "storage": {"state": storage, "detail": detail},
            "display": health.display_status(),
            "receipt": (await self.stores.reader.read(receipts.status))["open"],
            "broker": health.broker_status(),
            "counters": {
                **health.counters(),
                **self.alerts.screening.counts(),
                "commands": self.commands.handled,
            },
        }

    async def cmd_set_mode(self, args: dict[str, Any]) -> dict[str, Any]:
        mode = str(require(args, "mode", str)).lower()
        if mode not in MODES:
            raise CommandError("bad_args", f"mode {mode!r} is not one of {', '.join(MODES)}")
        previous = self.station.mode
        await self.control.change_mode(mode)
        self._log.info("station.mode_changed", mode=mode, previous=previous, by="command")
        return {"mode": mode, "previous": previous}

    async def cmd_replay_events(self, args: dict[str, Any]) -> dict[str, Any]:
        first, last = require(args, "from_seq", int), require(args, "to_seq", int)
        if first < 1 or last < first:
            raise CommandError("bad_args", "need 1 <= from_seq <= to_seq")
        if last - first >= REPLAY_MAX:
            raise CommandError("bad_args", f"at most {REPLAY_MAX} events per replay")
        topic = self.out.topics.event_scan

        def replay(conn: Any) -> list[int]:
            rows = conn.execute(
                "SELECT seq, payload FROM scans WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last)
            )
            seqs = []
            for seq, payload in rows.fetchall():
                outbox.enqueue(conn, topic, payload.encode("utf-8"), 1, False, "replay")
                seqs.append(seq)
            return seqs

        seqs = (await self.stores.writer.submit(replay)).value
        self.out.wake()
        missing = sorted(set(range(first, last + 1)) - set(seqs))
        return {"from_seq": first, "to_seq": last, "count": len(seqs),
                "missing": missing[:1000], "missing_count": len(missing)}  # fmt: skip

    async def cmd_manifest_resync(self, args: dict[str, Any]) -> dict[str, Any]:
        await self.stores.manifest_writer.submit(manifest.drop_version)
        self.station.manifest_version = 0
        self._last_request = None
        await self.request_manifest(0)
        return {"have_version": 0}

    async def cmd_test_print(self, args: dict[str, Any]) -> dict[str, Any]:
        printer = require(args, "printer", str)
        try:
            job_id = await self.printing.test_print(printer)
        except JobRejected as exc:
            raise CommandError(exc.code, exc.message) from None
        return {"job_id": job_id, "printer": printer}

    async def cmd_reprint(self, args: dict[str, Any]) -> dict[str, Any]:
        job_id = require(args, "job_id", str)
        try:
            printer = await self.printing.reprint(job_id)
        except JobRejected as exc:
            raise CommandError(exc.code, exc.message) from None
        return {"job_id": job_id, "printer": printer, "state": "accepted"}

    async def cmd_reload_config(self, args: dict[str, Any]) -> dict[str, Any]:
        _, overlay = (await self.stores.writer.submit(desired.load_overlay)).value
        try:
            new = desired.effective_config(self.control.file_data(), overlay)
        except ConfigError as exc:
            raise CommandError("invalid_config", str(exc)) from None
        await self.control.apply_config(new)
        return {"config_version": self.station.config_version, "scanners": [s.id for s in new.scanners]}


def _version_of(payload: bytes) -> int | None:
    try:
        data = parse_json(payload)
    except ValueError:
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None
