"""The agent's side of software updates: the channel to `edge-agent launch`, the `update` and
`rollback` commands (handed to the launcher, which owns the releases) and the retained
`{root}/software` state (mqtt.md, "Software update"), published on every change and at every
connect. An agent run without the launcher (`edge-agent run`) answers `updates_disabled` and
publishes its version as `idle`."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
from typing import Any

import structlog

from edge_agent.sync.commands import CommandError
from edge_agent.sync.models import rfc3339
from edge_agent.sync.outbound import Outbound
from edge_agent.update.protocol import CHANNEL_ENV, LineDecoder, encode

REPLY_TIMEOUT_S = 10.0


class LauncherChannel:
    """The socket the launcher gave this process ($EDGE_AGENT_LAUNCHER_FD), if any. Opened first
    thing in `Agent.run`, so `hello` says the release started before anything else can fail."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get(CHANNEL_ENV, "")
        self.fd = int(raw) if raw.isdigit() else None
        self.reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def enabled(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def open(self, version: str, schema: int) -> None:
        if self.fd is None:
            return
        os.environ.pop(CHANNEL_ENV, None)  # not for the agent's own children (feedback commands)
        try:
            sock = socket.socket(fileno=self.fd)
            os.set_inheritable(self.fd, False)
            self.reader, self._writer = await asyncio.open_unix_connection(sock=sock)
        except OSError as exc:
            structlog.get_logger("edge_agent.software").error(
                "launcher.channel_failed", component="software", error=str(exc)
            )
            return
        self.send({"op": "hello", "version": version, "schema": schema, "pid": os.getpid()})

    def send(self, message: dict[str, Any]) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(encode(message))

    def health(self, stage: str) -> None:
        self.send({"op": "health", "stage": stage})

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class SoftwareUpdates:
    """A component: reads the launcher's messages; answers `update` and `rollback`."""

    def __init__(self, channel: LauncherChannel, out: Outbound, version: str) -> None:
        self.name = "software"
        self._channel = channel
        self._out = out
        self._version = version
        self._state: dict[str, Any] = {
            "current": version, "previous": None, "target": None, "state": "idle", "error": None,
            "ts": rfc3339(), "managed": False,
        }  # fmt: skip
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._log = structlog.get_logger("edge_agent.software").bind(component="software")

    async def start(self) -> None:
        pass

    async def run(self) -> None:
        reader = self._channel.reader
        if reader is None:
            await asyncio.Event().wait()  # nothing to read without a launcher
            return
        decoder = LineDecoder()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                for message in decoder.feed(data):
                    await self._on_message(message)
        self._log.error(
            "launcher.gone", detail="the launcher closed its channel; updates are off until restart"
        )
        self._channel.close()
        await asyncio.Event().wait()

    async def stop(self) -> None:
        for future in self._replies.values():
            future.cancel()
        self._replies.clear()

    async def _on_message(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "software" and isinstance(message.get("state"), dict):
            state = {**message["state"], "managed": True}
            if state != self._state:
                self._state = state
                await self.publish()
        elif op == "reply":
            future = self._replies.pop(message.get("id"), None)  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(message)
        elif op == "garbage":
            self._log.warning("launcher.garbage", error=message.get("error"))

    async def publish(self) -> None:
        """Through the outbox: in order with the states before it, and kept across a restart."""
        state = self._state
        payload = {**self._out.envelope(str(state.get("ts") or rfc3339())), **state}
        await self._out.publish(self._out.topics.software, payload, retain=True, kind="software")

    async def _ask(self, op: str, args: dict[str, Any] | None) -> dict[str, Any]:
        if not self._channel.enabled:
            raise CommandError(
                "updates_disabled", "this agent is not run by `edge-agent launch` (see docs/operations.md)"
            )
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        self._channel.send({"op": op, "id": request_id, **({"args": args} if args is not None else {})})
        try:
            async with asyncio.timeout(REPLY_TIMEOUT_S):
                reply = await future
        except TimeoutError:
            raise CommandError(
                "launcher_timeout", f"the launcher did not answer within {REPLY_TIMEOUT_S:g} s"
            ) from None
        finally:
            self._replies.pop(request_id, None)
        if reply.get("status") != "ok":
            err = reply.get("error") or {}
            raise CommandError(str(err.get("code") or "error"), str(err.get("message") or "refused"))
        data = reply.get("data")
        return data if isinstance(data, dict) else {}

    async def cmd_update(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self._ask("update", args)

    async def cmd_rollback(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self._ask("rollback", None)
