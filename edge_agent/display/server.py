"""The station display's web server: one static page, its state as JSON, and server-sent events.

The page is plain HTML, CSS and JavaScript shipped inside the package (no build step). It opens
`/events`, gets the whole state at once and again after every change; EventSource reconnects
by itself when the agent restarts, and the page says so while it is cut off.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import time
from collections.abc import Callable
from importlib import resources

import structlog

from edge_agent.config import AgentConfig
from edge_agent.display import catalogs, http
from edge_agent.display.hub import DisplayHub, load_from_db, local_day, local_midnight
from edge_agent.errors import EdgeAgentError
from edge_agent.ports import Health, Station
from edge_agent.store import outbox, receipts
from edge_agent.store.reader import Reader

REFRESH_S = 1.0
"""How often the health part (broker, outbox, printers, scanners) is read, seconds."""
RETRY_MS = 1000
"""How soon a page reconnects after losing the agent, milliseconds (sent to EventSource)."""

STATIC = {
    "/": ("index.html", "text/html"),
    "/display.js": ("display.js", "text/javascript"),
    "/display.css": ("display.css", "text/css"),
}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


PING_S = 10.0
"""A comment line on an idle event stream this often, so proxies and the page see it alive, seconds."""


def authorized(request: http.Request, token: bytes) -> bool:
    """`?token=` or `Authorization: Bearer`, compared in constant time."""
    auth = request.headers.get("authorization", "")
    given = auth[7:] if auth.startswith("Bearer ") else request.query.get("token", "")
    return hmac.compare_digest(given.encode(), token)


class DisplayError(EdgeAgentError):
    """The display's address cannot be served (taken, or not an address of this host)."""


class DisplayServer:
    """Ports: the `hub` it serves, `config` (its `display` section and the device), `reader` (today's
    scans from storage), `health` and `station` (what the page shows besides scans)."""

    def __init__(
        self,
        hub: DisplayHub,
        config: Callable[[], AgentConfig],
        reader: Reader,
        health: Health,
        station: Station,
    ) -> None:
        self.name = "display"
        self._config = config
        self._reader = reader
        self._health = health
        self._station = station
        self._hub = hub
        self._server: asyncio.Server | None = None
        self._token: bytes | None = None
        self._closing = False
        self.address: tuple[str, int] | None = None
        self._log = structlog.get_logger("edge_agent.display").bind(component="display")

    async def start(self) -> None:
        cfg = self._config().display
        self._closing = False
        self.address = None
        secret = cfg.token.get_secret_value() if cfg.token is not None and self._token_required() else None
        self._token = secret.encode() if secret else None
        try:
            self._server = await http.serve(cfg.host, cfg.port, self._handle)
        except OSError as exc:
            raise DisplayError(
                f"display: cannot serve on {cfg.host}:{cfg.port}: {exc.strerror or exc}"
            ) from None
        sockets = self._server.sockets  # the port actually bound (0: any)
        self.address = sockets[0].getsockname()[:2] if sockets else (cfg.host, cfg.port)
        midnight = local_midnight()
        last, counts = await self._reader.read(lambda c: load_from_db(c, midnight))
        self._hub.loaded(last, counts, local_day())
        opened = (await self._reader.read(receipts.status))["open"]
        if opened is not None:
            self._hub.show_receipt(opened)
        device, cfg = self._config().device, self._config().display
        # set here, not refreshed: a change under `display:` restarts this component
        self._hub.set("station", {"site": device.site, "device": device.id, "dim_after_s": cfg.dim_after_s,
                                  "title": cfg.title or f"{device.site} / {device.id}",
                                  "language": cfg.language, "sound": cfg.sound})  # fmt: skip
        await self._refresh()
        self._log.info("display.serving", url=f"http://{self.address[0]}:{self.address[1]}/",
                       token_required=self._token_required())  # fmt: skip

    def _token_required(self) -> bool:
        cfg = self._config().display
        return cfg.token is not None and not is_loopback(cfg.host)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            await self._refresh()

    async def stop(self) -> None:
        self._closing = True
        self.address = None
        self._hub.wake_all()  # open event streams end now, not at the shutdown timeout
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await server.wait_closed()

    async def _refresh(self) -> None:
        health, hub = self._health, self._hub
        depth, oldest = await self._reader.read(outbox.depth)
        broker = health.broker_status()
        hub.roll_day()
        hub.set("mode", self._station.mode)
        hub.set(
            "broker", {"connected": broker["connected"], "address": broker["server"] or broker["servers"][0]}
        )
        hub.set("outbox", {"depth": depth, "oldest_unsent_s": round(oldest) if oldest is not None else 0})
        hub.set("printers", health.printer_states())
        hub.set("scanners", health.scanner_states())
        hub.set("storage_full", health.storage_status()[0] == "full")
        hub.set("manifest_version", self._station.manifest_version)

    # --- handlers ------------------------------------------------------------------------
    async def _handle(self, request: http.Request, response: http.Response) -> None:
        if self._token is not None and not authorized(request, self._token):
            self._log.warning("display.refused", peer=request.peer, path=request.path)
            await response.send(401, b"this station's page needs its token\n",
                                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])  # fmt: skip
        elif request.path == "/messages.json":
            lang = request.query.get("lang") or self._config().display.language
            await response.send(200, catalogs.page_json(lang), [("Content-Type", "application/json; charset=utf-8"),
                                                                 ("Cache-Control", "no-cache")])  # fmt: skip
        elif request.path in STATIC:
            name, content_type = STATIC[request.path]
            body = resources.files("edge_agent.display").joinpath("static", name).read_bytes()
            if name == "index.html":  # the document's language before any script runs
                body = body.replace(
                    b'<html lang="en">', f'<html lang="{self._config().display.language}">'.encode()
                )
            # no-cache: after an upgrade the kiosk loads the new page at its next reconnect
            await response.send(200, body, [("Content-Type", f"{content_type}; charset=utf-8"),
                                            ("Cache-Control", "no-cache")])  # fmt: skip
        elif request.path == "/api/state":
            await response.send(200, self._encode().encode(), [("Content-Type", "application/json; charset=utf-8"),
                                                                ("Cache-Control", "no-store")])  # fmt: skip
        elif request.path == "/events":
            await self._events(request, response)
        else:
            await response.send(404, b"not here\n", [("Content-Type", "text/plain")])

    async def _events(self, request: http.Request, response: http.Response) -> None:
        """Server-sent events: the whole document at once and after every real change."""
        changed = self._hub.watch()
        self._log.info("display.page_connected", peer=request.peer, pages=self._hub.watchers)
        t0 = last = time.monotonic()
        try:
            await response.start(200, [("Content-Type", "text/event-stream; charset=utf-8"),
                                       ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")])  # fmt: skip
            await response.write(f"retry: {RETRY_MS}\nevent: state\ndata: {self._encode()}\n\n".encode())
            while not self._closing and not response.gone.is_set():
                waits = {asyncio.ensure_future(changed.wait()), asyncio.ensure_future(response.gone.wait())}
                _, pending = await asyncio.wait(waits, timeout=PING_S, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                if response.gone.is_set() or self._closing:
                    break
                if changed.is_set():
                    changed.clear()
                    await response.write(f"event: state\ndata: {self._encode()}\n\n".encode())
                    last = time.monotonic()
                elif time.monotonic() - last >= PING_S:
                    await response.write(b": ping\n\n")
                    last = time.monotonic()
        except ConnectionError:
            pass  # the page went away (or stalled); it reconnects on its own if it still exists
        finally:
            self._hub.unwatch(changed)
            self._log.info("display.page_disconnected", peer=request.peer,
                           seconds=round(time.monotonic() - t0, 1))  # fmt: skip

    def _encode(self) -> str:
        return json.dumps(self._hub.document(), separators=(",", ":"), ensure_ascii=False)
