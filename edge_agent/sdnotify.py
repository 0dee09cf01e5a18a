"""systemd's notification protocol, written natively: datagrams on $NOTIFY_SOCKET.

READY=1 once storage, scanners and the MQTT loop are up; WATCHDOG=1 from a task of the event
loop itself at half of $WATCHDOG_USEC, so a blocked loop stops the pings and systemd restarts
the agent; STATUS= lines saying what the agent is doing; STOPPING=1 on shutdown. Without
$NOTIFY_SOCKET (not under systemd) every call does nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and (not pid or pid == str(os.getpid())) else 0.0
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *lines: str) -> bool:
        if not self._address:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)  # never stall the event loop on a reader that fell behind
        try:
            self._sock.sendto("\n".join(lines).encode("utf-8"), self._address)
        except OSError:
            return False  # systemd went away, never listened, or its queue is full: nothing to tell
        return True

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Watchdog:
    """A supervised component: pings from the event loop while it turns; STATUS every 10 s."""

    def __init__(self, notifier: Notifier, describe: Callable[[], str]) -> None:
        self.name = "watchdog"
        self._notifier = notifier
        self._describe = describe

    async def start(self) -> None:
        pass

    async def run(self) -> None:
        interval = self._notifier.watchdog_s / 2 if self._notifier.watchdog_s else 10.0
        last_status = 0.0
        loop = asyncio.get_running_loop()
        while True:
            if self._notifier.watchdog_s:
                self._notifier.notify("WATCHDOG=1")
            if loop.time() - last_status >= 10.0:
                last_status = loop.time()
                self._notifier.status(self._describe())
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        pass
