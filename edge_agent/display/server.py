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
from typing import TYPE_CHECKING, Any

import structlog

from edge_agent.config import AgentConfig
from edge_agent.display.hub import DisplayHub, load_from_db, local_day, local_midnight
from edge_agent.errors import EdgeAgentError
from edge_agent.ports import Health, Station
from edge_agent.store import outbox
from edge_agent.store.reader import Reader

if TYPE_CHECKING:
    from aiohttp import web

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


def token_guard(token: str, log: Any) -> Any:
    """aiohttp middleware: only requests carrying `token` (`?token=` or `Authorization: Bearer`)
    are served; compared in constant time."""
    from aiohttp import web

    expected = token.encode()

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        given = auth[7:] if auth.startswith("Bearer ") else request.query.get("token", "")
        if not hmac.compare_digest(given.encode(), expected):
            log.warning("display.refused", peer=request.remote, path=request.path)
            return web.Response(status=401, text="this station's page needs its token\n",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        response: web.StreamResponse = await handler(request)
        return response

    return guard


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
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.address: tuple[str, int] | None = None
        self._log = structlog.get_logger("edge_agent.display").bind(component="display")

    async def start(self) -> None:
        from aiohttp import web

        cfg = self._config().display
        self._closing = False
        self.address = None
        token = cfg.token.get_secret_value() if cfg.token is not None and self._token_required() else None
        app = web.Application(middlewares=[token_guard(token, self._log)] if token else [])
        for path in STATIC:
            app.router.add_get(path, self._static)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/events", self._events)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, cfg.host, cfg.port)
        try:
            await site.start()
        except OSError as exc:
            raise DisplayError(
                f"display: cannot serve on {cfg.host}:{cfg.port}: {exc.strerror or exc}"
            ) from None
        sockets = getattr(site._server, "sockets", None) or []  # the port actually bound (0: any)
        self.address = sockets[0].getsockname()[:2] if sockets else (cfg.host, cfg.port)
        midnight = local_midnight()
        last, counts = await self._reader.read(lambda c: load_from_db(c, midnight))
        self._hub.loaded(last, counts, local_day())
        device, cfg = self._config().device, self._config().display
        # set here, not refreshed: a change under `display:` restarts this component
        self._hub.set("station", {"site": device.site, "device": device.id, "dim_after_s": cfg.dim_after_s,
                                  "title": cfg.title or f"{device.site} / {device.id}"})  # fmt: skip
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
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

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
    async def _static(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        name, content_type = STATIC[request.path]
        body = resources.files("edge_agent.display").joinpath("static", name).read_bytes()
        # no-cache: after an upgrade the kiosk loads the new page at its next reconnect
        return web.Response(body=body, content_type=content_type, headers={"Cache-Control": "no-cache"})

    async def _state(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        return web.json_response(self._hub.document(), headers={"Cache-Control": "no-store"})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        from aiohttp_sse import EventSourceResponse

        changed = self._hub.watch()
        peer = request.remote
        self._log.info("display.page_connected", peer=peer, pages=self._hub.watchers)
        t0 = time.monotonic()
        stream = EventSourceResponse(ping_interval=10, send_timeout=10)
        try:
            await stream.prepare(request)
            async with stream:
                await stream.send(self._encode(), event="state", retry=RETRY_MS)
                while stream.is_connected() and not self._closing:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(5):  # also notices a page gone quiet
                            await changed.wait()
                    if changed.is_set() and not self._closing:
                        changed.clear()
                        await stream.send(self._encode(), event="state")
        except (ConnectionError, TimeoutError):
            pass  # the page went away; it reconnects on its own if it still exists
        finally:
            self._hub.unwatch(changed)
            self._log.info("display.page_disconnected", peer=peer, seconds=round(time.monotonic() - t0, 1))
        return stream

    def _encode(self) -> str:
        return json.dumps(self._hub.document(), separators=(",", ":"), ensure_ascii=False)
