"""What fleet admins and the central system see and steer: presence, telemetry, commands,
desired configuration, the manifest feed, alerts, and the handling of bad input."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from edge_agent import __version__
from edge_agent.errors import ConfigError
from edge_agent.store import manifest, outbox
from edge_agent.sync import desired
from edge_agent.sync.commands import CommandError, CommandService, require
from edge_agent.sync.link import Inbound, NotConnected, json_bytes
from edge_agent.sync.models import MODES, DesiredConfig, describe, parse_json, rfc3339
from edge_agent.sync.screen import Screen, screen

if TYPE_CHECKING:
    from edge_agent.app import Agent

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
        agent = self._fleet.agent
        while True:
            await asyncio.sleep(agent.config.telemetry_interval_s)
            if not agent.link.connected.is_set():
                continue
            payload = await self._fleet.telemetry_payload()
            try:
                agent.link.publish(agent.topics.telemetry, json_bytes(payload), qos=0)
            except NotConnected:
                continue

    async def stop(self) -> None:
        pass


class Fleet:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.telemetry = Telemetry(self)
        self._last_request: tuple[int, float] | None = None
        self.screening = Screen()
        handlers = {
            "ping": self.cmd_ping,
            "status": self.cmd_status,
            "set_mode": self.cmd_set_mode,
            "replay_events": self.cmd_replay_events,
            "manifest_resync": self.cmd_manifest_resync,
            "reload_config": self.cmd_reload_config,
            "test_print": self.cmd_test_print,
            "reprint": self.cmd_reprint,
        }
        self.commands = CommandService(handlers, self._reply, agent.topics.cmd_reply, self._reply_now)
        self._log = structlog.get_logger("edge_agent.fleet").bind(component="fleet")

    # --- outbound --------------------------------------------------------------------------
    async def publish_presence(self) -> None:
        agent = self.agent
        payload = {
            **agent.envelope(),
            "online": True,
            "boot_id": agent.boot_id,
            "agent_version": __version__,
            "config_version": agent.config_version,
            "scanners": [s.id for s in agent.config.scanners],
            "printers": [p.id for p in agent.config.printers],
            "manifest_version": agent.manifest_version,
            "mode": agent.mode,
            "clock_synced": agent.scans.clock.synced,
            "broker": agent.link.server,
        }
        with contextlib.suppress(NotConnected):  # the next CONNACK publishes it again
            agent.link.publish(agent.topics.state, json_bytes(payload), qos=1, retain=True)

    async def alert(self, kind: str, **fields: Any) -> None:
        await self.agent.publish(self.agent.topics.event_alert, {**self.agent.envelope(), "kind": kind, **fields},
                                 kind="alert")  # fmt: skip

    def alert_now(self, kind: str, **fields: Any) -> None:
        """An alert that cannot wait for (or fit in) the outbox: published directly, when connected."""
        payload = json_bytes({**self.agent.envelope(), "kind": kind, **fields})
        with contextlib.suppress(NotConnected):
            self.agent.link.publish(self.agent.topics.event_alert, payload, qos=1)

    async def request_manifest(self, have: int) -> None:
        now = time.monotonic()
        if self._last_request and self._last_request[0] == have and now - self._last_request[1] < 5.0:
            return  # one request per version is enough; the chunks of a delta would each ask
        self._last_request = (have, now)
        await self.agent.publish(
            self.agent.topics.manifest_request, {**self.agent.envelope(), "have_version": have}
        )
        self._log.info("manifest.requested", have_version=have)

    async def _reply_now(self, topic: str, payload: dict[str, Any], correlation: bytes | None) -> None:
        """The reply to a request that could not be read: sent at once with QoS 0, not stored, so
        a flood of bad requests cannot queue in front of scan events (it is answered while the
        link that brought it is up)."""
        body = json_bytes({**self.agent.envelope(), **payload})
        with contextlib.suppress(NotConnected):
            self.agent.link.publish(topic, body, qos=0, correlation=correlation)

    async def _reply(self, topic: str, payload: dict[str, Any], correlation: bytes | None) -> None:
        await self.agent.publish(
            topic, {**self.agent.envelope(), **payload}, kind="reply", correlation=correlation
        )

    async def telemetry_payload(self) -> dict[str, Any]:
        agent = self.agent
        depth, oldest = await agent.reader.read(outbox.depth)
        try:
            disk_free = shutil.disk_usage(agent.config.storage.path).free
        except OSError:
            disk_free = 0
        return {
            "ts": rfc3339(),
            "uptime_s": int(time.monotonic() - agent.started),
            "outbox_depth": depth,
            "oldest_unsent_s": round(oldest, 3) if oldest is not None else 0,
            "scans_total": agent.scans.scans_total,
            "prints_total": agent.prints_total,
            "scan_latency_us_p50": agent.scans.percentile(0.5) or 0,
            "scan_latency_us_p99": agent.scans.percentile(0.99) or 0,
            "rss_bytes": _rss_bytes(),
            "storage_full": agent.scans.storage_full,
            "storage": agent.scans.storage_state,
            "disk_free_bytes": disk_free,
            "device": agent.config.device.id,
            "site": agent.config.device.site,
            "broker": agent.link.server,
            "broker_moves": agent.link.moves,
            **self.screening.counts(),
        }

    # --- inbound ---------------------------------------------------------------------------
    async def dispatch(self, message: Inbound) -> None:
        """A message that passed `screen` (size, JSON, shape): its handler checks the rest."""
        topics = self.agent.topics
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
            await self.bad_message(message.topic, "no handler for this topic")

    def screen(self, message: Inbound) -> bool:
        """In paho's thread: True when the message is bad and has been dealt with here (sync/screen.py)."""
        agent = self.agent
        verdict = screen(agent.topics, message.topic, message.payload, agent.config.mqtt.max_payload_bytes)
        if verdict.ok:
            return False
        if verdict.command is not None:
            n = self.screening.bad_request()
            # nobody can match a reply without request id or correlation data: in a flood only as
            # many are answered as alerts would be sent (10 a minute), the rest are counted
            unmatchable = verdict.request_id is None and message.correlation is None
            if unmatchable and not self.screening.answer_unmatchable(agent.topics, message.topic):
                return True
            code = "too_large" if verdict.error and "max_payload_bytes" in verdict.error else "bad_request"
            reply = {
                "request_id": verdict.request_id,
                "status": "error",
                "error": {"code": code, "message": verdict.error},
            }
            topic = message.response_topic or agent.topics.cmd_reply(verdict.command)
            with contextlib.suppress(NotConnected):
                agent.link.publish(
                    topic, json_bytes({**agent.envelope(), **reply}), qos=0, correlation=message.correlation
                )
            if n <= 10 or n % 1000 == 0:  # a flood leaves a line per thousand in the log
                self._log.warning(
                    "command.bad_request", command=verdict.command, error=reply["error"], bad_requests=n
                )
            return True
        report, summary_at = self.screening.bad(agent.topics, message.topic)
        loop = agent.loop
        if summary_at is not None:
            loop.call_soon_threadsafe(loop.call_later, summary_at - time.monotonic() + 0.01, self._summaries)
        if report:
            loop.call_soon_threadsafe(self._report_bad, message.topic, verdict.error or "bad message")
        return True

    async def bad_message(self, topic: str, error: str) -> None:
        """A bad message found by a handler (in the loop): counted and reported like the ones
        `screen` finds, at most `limit` alerts per topic filter per minute (mqtt.md, "Bad input")."""
        report, summary_at = self.screening.bad(self.agent.topics, topic)
        if summary_at is not None:
            asyncio.get_running_loop().call_later(summary_at - time.monotonic() + 0.01, self._summaries)
        if report:
            self._report_bad(topic, error)

    def _report_bad(self, topic: str, error: str) -> None:
        self._log.warning(
            "inbound.bad_message", topic=topic, filter=self.agent.topics.filter_of(topic), error=error
        )
        self.agent.spawn(self.alert("bad_message", topic=topic, error=error), "bad-message-alert")

    def _summaries(self) -> None:
        for key, suppressed in self.screening.summaries():
            counts = self.screening.counts()
            self._log.warning(
                "inbound.flood", filter=key, suppressed=suppressed, bad_messages=counts["bad_messages"]
            )
            self.agent.spawn(self.alert("bad_message", topic=key, suppressed=suppressed), "flood-summary")

    async def on_job(self, payload: bytes) -> None:
        await self.agent.jobs.on_message(payload)

    async def on_manifest(self, payload: bytes) -> None:
        agent = self.agent

        def apply(conn: Any) -> manifest.ManifestOutcome | str:
            parsed = manifest.parse(payload)
            if isinstance(parsed, str):
                return parsed
            return manifest.apply(conn, parsed)

        result = (await agent.manifest_writer.submit(apply)).value
        if isinstance(result, str):
            await self.bad_message(agent.topics.manifest, result)
            return
        agent.manifest_version = result.version
        if result.status == "out_of_step":
            self._log.info("manifest.out_of_step", error=result.error, have_version=result.version)
            await self.request_manifest(result.version)
        elif result.status in ("applied", "snapshot_applied"):
            self._log.info("manifest.applied", status=result.status, version=result.version, rows=result.rows)
        elif result.status == "rejected":
            await self.bad_message(agent.topics.manifest, result.error or "rejected")

    async def on_desired(self, payload: bytes) -> None:
        agent, topics = self.agent, self.agent.topics
        try:
            request = DesiredConfig.model_validate_json(payload)
        except ValidationError as exc:
            version = _version_of(payload)
            await self.bad_message(topics.config_desired, describe(exc))
            if version is not None:
                await self._report(version, "rejected", describe(exc))
            return
        if request.version <= agent.config_version:
            self._log.info("config.desired_ignored", version=request.version, applied=agent.config_version)
            return
        try:
            new = desired.effective_config(agent._file_data(), request.config)
        except ConfigError as exc:
            await self._report(request.version, "rejected", str(exc))
            return
        await agent.writer.submit(lambda c: desired.save_overlay(c, request.version, request.config))
        await agent.apply_config(new)
        agent.config_version = request.version
        self._log.info("config.applied", version=request.version)
        await self._report(request.version, "applied", None)
        await self.publish_presence()

    async def _report(self, version: int, status: str, error: str | None) -> None:
        payload = {**self.agent.envelope(), "version": version, "status": status, "error": error}
        await self.agent.publish(self.agent.topics.config_reported, payload, retain=True, kind="reported")

    # --- commands --------------------------------------------------------------------------
    async def cmd_ping(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"uptime_s": int(time.monotonic() - self.agent.started), "boot_id": self.agent.boot_id}

    async def cmd_status(self, args: dict[str, Any]) -> dict[str, Any]:
        agent = self.agent
        depth, oldest = await agent.reader.read(outbox.depth)
        returns = (await agent.manifest_writer.submit(manifest.count)).value
        return {
            "outbox_depth": depth,
            "oldest_unsent_s": round(oldest, 3) if oldest is not None else 0,
            "scanners": agent.scanner_states(),
            "printers": agent.printer_states(),
            "manifest_version": agent.manifest_version,
            "manifest_returns": returns,
            "config_version": agent.config_version,
            "mode": agent.mode,
            "storage_full": agent.scans.storage_full,
            "storage": {"state": agent.scans.storage_state, "detail": agent.scans.storage_detail},
            "display": agent.display_status(),
            "broker": {
                "server": agent.link.server,
                "servers": ["{}:{}".format(*e) for e in agent.config.mqtt.endpoints()],
                "connects": agent.link.connects,
                "moves": agent.link.moves,
            },
            "counters": {
                "scans_total": agent.scans.scans_total,
                "prints_total": agent.prints_total,
                "published": agent.publisher.published,
                "acked": agent.publisher.acked_total,
                **self.screening.counts(),
                "commands": self.commands.handled,
                "store_failures": agent.scans.store_failures,
                "restarts": dict(agent.supervisor.restarts),
            },
        }

    async def cmd_set_mode(self, args: dict[str, Any]) -> dict[str, Any]:
        mode = str(require(args, "mode", str)).lower()
        if mode not in MODES:
            raise CommandError("bad_args", f"mode {mode!r} is not one of {', '.join(MODES)}")
        await self.agent.writer.submit(lambda c: outbox.set_meta(c, "mode", mode))
        previous = self.agent.mode
        self.agent.mode_changed(mode)
        self._log.info("station.mode_changed", mode=mode, previous=previous, by="command")
        return {"mode": mode, "previous": previous}

    async def cmd_replay_events(self, args: dict[str, Any]) -> dict[str, Any]:
        first, last = require(args, "from_seq", int), require(args, "to_seq", int)
        if first < 1 or last < first:
            raise CommandError("bad_args", "need 1 <= from_seq <= to_seq")
        if last - first >= REPLAY_MAX:
            raise CommandError("bad_args", f"at most {REPLAY_MAX} events per replay")
        topic = self.agent.topics.event_scan

        def replay(conn: Any) -> list[int]:
            rows = conn.execute(
                "SELECT seq, payload FROM scans WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last)
            )
            seqs = []
            for seq, payload in rows.fetchall():
                outbox.enqueue(conn, topic, payload.encode("utf-8"), 1, False, "replay")
                seqs.append(seq)
            return seqs

        seqs = (await self.agent.writer.submit(replay)).value
        self.agent.publisher.wake()
        missing = sorted(set(range(first, last + 1)) - set(seqs))
        return {"from_seq": first, "to_seq": last, "count": len(seqs),
                "missing": missing[:1000], "missing_count": len(missing)}  # fmt: skip

    async def cmd_manifest_resync(self, args: dict[str, Any]) -> dict[str, Any]:
        await self.agent.manifest_writer.submit(manifest.drop_version)
        self.agent.manifest_version = 0
        self._last_request = None
        await self.request_manifest(0)
        return {"have_version": 0}

    async def cmd_test_print(self, args: dict[str, Any]) -> dict[str, Any]:
        from edge_agent.printing.jobs import JobRejected

        printer = require(args, "printer", str)
        try:
            job_id = await self.agent.jobs.test_print(printer)
        except JobRejected as exc:
            raise CommandError(exc.code, exc.message) from None
        return {"job_id": job_id, "printer": printer}

    async def cmd_reprint(self, args: dict[str, Any]) -> dict[str, Any]:
        from edge_agent.printing.jobs import JobRejected

        job_id = require(args, "job_id", str)
        try:
            printer = await self.agent.jobs.reprint(job_id)
        except JobRejected as exc:
            raise CommandError(exc.code, exc.message) from None
        return {"job_id": job_id, "printer": printer, "state": "accepted"}

    async def cmd_reload_config(self, args: dict[str, Any]) -> dict[str, Any]:
        agent = self.agent
        _, overlay = (await agent.writer.submit(desired.load_overlay)).value
        try:
            new = desired.effective_config(agent._file_data(), overlay)
        except ConfigError as exc:
            raise CommandError("invalid_config", str(exc)) from None
        await agent.apply_config(new)
        return {"config_version": agent.config_version, "scanners": [s.id for s in new.scanners]}


def _version_of(payload: bytes) -> int | None:
    try:
        data = parse_json(payload)
    except ValueError:
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None
