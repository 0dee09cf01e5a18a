"""`edge-agent launch`: the small, stable process systemd runs when updates are enabled.

Theory of operation. The launcher runs one agent at a time, the release `want` names, as a child
process, and keeps it running (a crash is restarted after a jittered backoff, as systemd would).
The child talks to the launcher on two channels: systemd's own notification protocol (the child's
$NOTIFY_SOCKET is a socket of the launcher, so the agent's READY/WATCHDOG/STATUS code is the same
with or without a launcher) and a socketpair of JSON lines (update/protocol.py) for health and for
the `update` and `rollback` commands, which the launcher hands to its release manager (manager.py).
Towards systemd the launcher is the service: it forwards the child's first READY and its STATUS,
pings the watchdog from its own loop, and kills a child whose own pings stop (a hung agent), which
is then restarted like a crashed one. A switch sets `want` and wakes the loop, which stops the old
child (SIGTERM, then SIGKILL) and starts the new one; while a release is on trial, the manager
waits for that child's events (`online`, `exit`) on a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from edge_agent.sdnotify import Notifier
from edge_agent.update.protocol import CHANNEL_ENV, LineDecoder, encode
from edge_agent.update.releases import Releases

STOP_TIMEOUT_S = 25.0


@dataclass(eq=False)
class Child:
    version: str
    proc: asyncio.subprocess.Process
    writer: asyncio.StreamWriter
    stages: set[str] = field(default_factory=set)
    schema: int | None = None
    last_ping: float = field(default_factory=time.monotonic)
    started: float = field(default_factory=time.monotonic)

    def send(self, message: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(message))


class Launcher:
    def __init__(self, config_path: Path, releases: Releases, notifier: Notifier) -> None:
        self.config_path = config_path
        self.releases = releases
        self.notifier = notifier
        self.want = ""
        self.child: Child | None = None
        self.events: asyncio.Queue[tuple[str, Child, Any]] | None = None
        """Set by the manager while a release is on trial: ("online" | "exit", child, detail)."""
        self.on_message: Any = None
        """The manager's handler of a child's `update`/`rollback` (and `hello`) messages."""
        self._changed = asyncio.Event()
        self._ready_sent = False
        self._sock: socket.socket | None = None
        self._address = f"@edge-agent-launch-{os.getpid()}-{random.getrandbits(32):08x}"
        self._log = structlog.get_logger("edge_agent.launch").bind(component="launcher")

    # --- the child ---------------------------------------------------------------------------
    def switch(self, version: str) -> None:
        self.want = version
        self._changed.set()

    async def run(self, stop: asyncio.Event) -> None:
        self._open_notify_socket()
        watchdog = asyncio.create_task(self._watchdog(), name="launcher-watchdog")
        try:
            async with asyncio.TaskGroup() as tg:
                loop_task = tg.create_task(self._loop(), name="launcher-children")
                await stop.wait()
                loop_task.cancel()
        finally:
            watchdog.cancel()
            self.notifier.stopping()
            if self.child is not None:
                await self._stop(self.child)
            if self._sock is not None:
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
                self._sock.close()

    async def _loop(self) -> None:
        delay = 1.0
        while True:
            self._changed.clear()
            version = self.want
            child = await self._spawn(version)
            exit_wait = asyncio.create_task(child.proc.wait(), name=f"wait-{version}")
            change_wait = asyncio.create_task(self._changed.wait(), name="want-changed")
            await asyncio.wait({exit_wait, change_wait}, return_when=asyncio.FIRST_COMPLETED)
            change_wait.cancel()
            if not exit_wait.done():
                exit_wait.cancel()
                await self._stop(child)
                self._forget(child, None)
                delay = 1.0
                continue
            code = exit_wait.result()
            self._forget(child, code)
            self._log.warning("agent.exited", release=version, code=code, pid=child.proc.pid)
            if time.monotonic() - child.started > 60:
                delay = 1.0
            wait = delay * random.uniform(0.8, 1.2)
            delay = min(30.0, delay * 2)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # a switch does not wait for the backoff
                    await self._changed.wait()

    def _forget(self, child: Child, code: int | None) -> None:
        child.writer.close()
        if self.child is child:
            self.child = None
        if self.events is not None and code is not None:
            self.events.put_nowait(("exit", child, code))

    async def _spawn(self, version: str) -> Child:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_", "LISTEN_"))}
        env.update(
            NOTIFY_SOCKET=self._address, EDGE_AGENT_RELEASE=version, **{CHANNEL_ENV: str(theirs.fileno())}
        )
        if self.notifier.watchdog_s:
            env["WATCHDOG_USEC"] = str(int(self.notifier.watchdog_s * 1e6))
        argv = [str(self.releases.executable(version)), "run", "-c", str(self.config_path)]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, env=env, pass_fds=(theirs.fileno(),), preexec_fn=_die_with_parent
            )
        except OSError as exc:
            # a release folder that lost its program: it counts as a start that crashed at once
            self._log.error("agent.spawn_failed", release=version, error=str(exc))
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "raise SystemExit(127)")
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        child = Child(version, proc, writer)
        self.child = child
        self._log.info("agent.started", release=version, pid=proc.pid)
        asyncio.create_task(self._read(child, reader), name=f"channel-{proc.pid}")  # noqa: RUF006 (ends with the child)
        return child

    async def _read(self, child: Child, reader: asyncio.StreamReader) -> None:
        decoder = LineDecoder()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                for message in decoder.feed(data):
                    await self._handle(child, message)

    async def _handle(self, child: Child, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "hello":
            child.stages.add("hello")
            schema = message.get("schema")
            child.schema = schema if isinstance(schema, int) else None
        elif op == "health":
            child.stages.add(str(message.get("stage")))
            self._log.info("agent.health", release=child.version, stage=message.get("stage"))
            if {"hello", "storage", "online"} <= child.stages and self.events is not None:
                self.events.put_nowait(("online", child, None))
        elif op == "garbage":
            self._log.warning("channel.garbage", release=child.version, error=message.get("error"))
            return
        if self.on_message is not None:
            await self.on_message(child, message)

    async def _stop(self, child: Child) -> None:
        if child.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            child.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await child.proc.wait()
        except TimeoutError:
            self._log.error("agent.kill", release=child.version, reason="did not stop within 25 s of SIGTERM")
            with contextlib.suppress(ProcessLookupError):
                child.proc.kill()
            await child.proc.wait()
        self._log.info("agent.stopped", release=child.version, code=child.proc.returncode)

    # --- systemd -----------------------------------------------------------------------------
    def _open_notify_socket(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.bind("\0" + self._address[1:])
        sock.setblocking(False)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_notify)

    def _on_notify(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            child = self.child
            for line in data.decode("utf-8", "replace").splitlines():
                if line == "WATCHDOG=1" and child is not None:
                    child.last_ping = time.monotonic()
                elif line == "READY=1" and not self._ready_sent:
                    self._ready_sent = True
                    self.notifier.notify("READY=1")
                elif line.startswith("STATUS=") and child is not None:
                    self.notifier.status(f"release {child.version}: {line[7:]}")

    async def _watchdog(self) -> None:
        """Pings systemd while the launcher's loop turns; kills a child whose pings stopped."""
        period = self.notifier.watchdog_s
        if not period:
            return
        while True:
            self.notifier.notify("WATCHDOG=1")
            child = self.child
            if (
                child is not None
                and child.proc.returncode is None
                and time.monotonic() - child.last_ping > period
            ):
                self._log.error(
                    "agent.hung", release=child.version, silent_s=round(time.monotonic() - child.last_ping, 1)
                )
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGABRT)
                child.last_ping = time.monotonic()  # SIGKILL after one more period, if it is still there
                asyncio.get_running_loop().call_later(period, _kill_if_alive, child)
            await asyncio.sleep(period / 4)


def _die_with_parent() -> None:
    """In the child between fork and exec: SIGTERM when the launcher dies, however it dies, so no
    agent is left running without it (under systemd the cgroup is cleaned up too)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _kill_if_alive(child: Child) -> None:
    if child.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.proc.kill()
