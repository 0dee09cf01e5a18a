"""The release manager of `edge-agent launch`: `update` and `rollback`, health, automatic rollback.

Theory of operation. An `update` is answered at once (accepted, or why not) and then runs as one
task: download -> verify (digest, then signature, then every wheel's tags against this
interpreter: `bad_platform`) -> install into a new release folder -> switch
`current` and restart -> trial. Every step is a `software` state, sent to the running agent (which
publishes it, retained) and kept in state.json. A trial passes when the new release's agent says
hello, has opened its storage and has published its state online, within `health_timeout_s`; it
fails when that agent exits first or the time runs out. A failed trial goes back to the release
that ran before (unless the storage can no longer be read by it: then the new release stays and
`software` says why), marks the failed version so nothing starts it again until an `update` names
it anew, and says `rolled_back`. A trial interrupted by a power cut goes on at the next launch.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path
from typing import Any

import structlog

from edge_agent.config.base import UpdateConfig
from edge_agent.store.db import schema_of
from edge_agent.sync.models import rfc3339
from edge_agent.update.bundle import BundleError, agent_wheel, extract_wheels, fetch, verify
from edge_agent.update.contents import check_fit
from edge_agent.update.launcher import Child, Launcher
from edge_agent.update.protocol import BUSY_STATES, Software, error, parse_update_args
from edge_agent.update.releases import DISTRIBUTION, Releases, State


class ReleaseManager:
    def __init__(
        self,
        launcher: Launcher,
        releases: Releases,
        config: UpdateConfig,
        storage: Path,
        own: tuple[str, int],
    ) -> None:
        self.launcher = launcher
        self.releases = releases
        self.config = config
        self.storage = storage
        self.own_version, self.own_schema = own
        self.state = State()
        self.software = Software(current="")
        self._task: asyncio.Task[None] | None = None
        self._log = structlog.get_logger("edge_agent.launch").bind(component="releases")

    # --- launch ------------------------------------------------------------------------------
    async def start(self, own_prefix: Path) -> None:
        current = await asyncio.to_thread(self.releases.ensure_initial, own_prefix, self.own_version)
        state = self.state = self.releases.load()
        state.schemas.setdefault(self.own_version, self.own_schema)
        saved = Software.from_dict(state.software) if state.software else None
        if saved is not None and saved.current == current:
            self.software = saved
        else:
            self.software = Software(current=current, previous=state.previous)
        self.launcher.want = current
        self.launcher.on_message = self.on_message
        trial = state.trial
        if trial and trial.get("version") == current and trial.get("from"):
            self._log.info("trial.resumed", release=current, came_from=trial["from"])
            self._task = asyncio.create_task(self._resume(current, str(trial["from"])), name="trial-resume")
        else:
            state.trial = None
            if self.software.state in BUSY_STATES:
                interrupted = error("interrupted", f"the launcher restarted while {self.software.state}")
                self._set(state="failed", error=interrupted)
            else:
                self._set()

    # --- the agent's messages ----------------------------------------------------------------
    async def on_message(self, child: Child, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "hello":
            if child.schema is not None and self.state.schemas.get(child.version) != child.schema:
                self.state.schemas[child.version] = child.schema
                await asyncio.to_thread(self.releases.save, self.state)
            child.send({"op": "software", "state": self.software.to_dict()})
        elif op in ("update", "rollback"):
            reply = self.request_update(message.get("args")) if op == "update" else self.request_rollback()
            child.send({"op": "reply", "id": message.get("id"), **reply})

    def _busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def request_update(self, raw: Any) -> dict[str, Any]:
        if not self.config.public_keys:
            return _refuse(
                "updates_disabled", "update.public_keys is empty in the agent's configuration file"
            )
        try:
            args = parse_update_args(raw if isinstance(raw, dict) else {})
        except ValueError as exc:
            return _refuse("bad_request", str(exc))
        if self._busy():
            return _refuse(
                "busy", f"an update to {self.software.target} is in progress ({self.software.state})"
            )
        if args.version == self.releases.current():
            return _refuse("already_current", f"release {args.version} is the one running")
        self._task = asyncio.create_task(self._update(args), name=f"update-{args.version}")
        return {"status": "ok", "data": {"state": "accepted", "version": args.version}}

    def request_rollback(self) -> dict[str, Any]:
        if self._busy():
            return _refuse(
                "busy", f"an update to {self.software.target} is in progress ({self.software.state})"
            )
        previous, current = self.state.previous, self.releases.current()
        if not previous or previous == current or not self.releases.installed(previous):
            return _refuse("no_previous", "there is no previous release installed to go back to")
        refusal = self._cannot_read(previous)
        if refusal:
            return _refuse("rollback_refused", refusal)
        self._task = asyncio.create_task(self._rollback(previous, str(current)), name=f"rollback-{previous}")
        return {"status": "ok", "data": {"state": "accepted", "version": previous}}

    # --- steps -------------------------------------------------------------------------------
    def _set(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.software, key, value)
        self.software.ts = rfc3339()
        self.software.extra["failed_versions"] = list(self.state.failed)
        self.state.software = self.software.to_dict()
        self.releases.save(self.state)
        self._log.info("software.state", **{k: v for k, v in self.software.to_dict().items() if k != "ts"})
        child = self.launcher.child
        if child is not None:
            child.send({"op": "software", "state": self.software.to_dict()})

    async def _update(self, args: Any) -> None:
        version, came_from = args.version, str(self.releases.current())
        cfg = self.config
        bundle = self.releases.downloads / f"{version}.bundle"
        wheels = self.releases.downloads / f"{version}.wheels"
        self._set(state="downloading", target=version, error=None)
        try:
            size = await asyncio.to_thread(fetch, args.url, bundle, cfg.max_bundle_mb * 2**20,
                                           cfg.min_free_mb * 2**20, 5, cfg.download_timeout_s)  # fmt: skip
            self._log.info("bundle.downloaded", release=version, bytes=size)
            self._set(state="verifying")
            await asyncio.to_thread(verify, bundle, args.sha256, args.signature, cfg.public_keys)
            # a bundle for another platform or Python is refused whole, before anything is unpacked
            await asyncio.to_thread(check_fit, bundle)
            self._set(state="installing")
            shutil.rmtree(wheels, ignore_errors=True)
            files = await asyncio.to_thread(extract_wheels, bundle, wheels, cfg.max_bundle_mb * 2**20)
            agent_wheel(files, DISTRIBUTION, version)
            if version == self.own_version and self.releases.installed(version):
                self._log.info("install.skipped", release=version, reason="the launcher's own release")
            else:
                await asyncio.to_thread(self.releases.install, version, wheels)
        except BundleError as exc:
            self._log.error("update.failed", release=version, code=exc.code, error=exc.message)
            self._set(state="failed", error=error(exc.code, exc.message))
            return
        except Exception as exc:  # a bug here must still leave the running release and a report
            self._log.exception("update.failed", release=version, error=repr(exc))
            self._set(state="failed", error=error("install_failed", repr(exc)))
            return
        finally:
            with contextlib.suppress(OSError):
                bundle.unlink()
            shutil.rmtree(wheels, ignore_errors=True)
        if version in self.state.failed:
            self.state.failed.remove(version)  # named anew: it may run again
        self._set(state="restarting")
        healthy, why = await self._trial(version, came_from, switch=True)
        if healthy:
            self.state.previous = came_from
            self._set(state="healthy", current=version, previous=came_from, error=None)
            keep = {version, came_from, self.own_version}
            removed = await asyncio.to_thread(self.releases.prune, keep, self.config.keep_releases)
            if removed:
                self._log.info("releases.pruned", removed=removed)
            return
        await self._back(version, came_from, why)

    async def _back(self, failed: str, to: str, why: dict[str, str]) -> None:
        self.state.failed = [*[v for v in self.state.failed if v != failed], failed]
        refusal = self._cannot_read(to)
        if refusal:
            self._log.error("rollback.refused", release=failed, to=to, reason=refusal)
            message = f"{why['message']}; rollback to {to} refused: {refusal}"
            self._set(state="failed", current=failed, error=error("rollback_refused", message))
            return
        self._log.warning("rollback", release=failed, to=to, reason=why)
        healthy, again = await self._trial(to, failed, switch=True)
        if not healthy:
            self._log.error("rollback.unhealthy", release=to, reason=again)
        self._set(state="rolled_back", current=to, target=failed, error=why,
                  extra={**self.software.extra, "rollback_healthy": healthy})  # fmt: skip

    async def _rollback(self, previous: str, current: str) -> None:
        self._set(state="restarting", target=previous, error=None)
        healthy, why = await self._trial(previous, current, switch=True)
        if healthy:
            self.state.previous = current
            self._set(state="rolled_back", current=previous, previous=current, target=previous, error=None)
            return
        await self._trial(current, previous, switch=True)
        self._set(state="failed", current=current, error=error("rollback_failed", why["message"]))

    async def _resume(self, version: str, came_from: str) -> None:
        self._set(state="restarting", target=version)
        healthy, why = await self._trial(version, came_from, switch=False)
        if healthy:
            self.state.previous = came_from
            self._set(state="healthy", current=version, previous=came_from, error=None)
        else:
            await self._back(version, came_from, why)

    async def _trial(self, version: str, came_from: str, switch: bool) -> tuple[bool, dict[str, str]]:
        queue: asyncio.Queue[tuple[str, Child, Any]] = asyncio.Queue()
        self.launcher.events = queue
        self.state.trial = {"version": version, "from": came_from}
        await asyncio.to_thread(self.releases.save, self.state)
        if switch:
            await asyncio.to_thread(self.releases.switch, version)
            self.launcher.switch(version)
        limit = self.config.health_timeout_s
        reached: set[str] = set()
        try:
            async with asyncio.timeout(limit):
                while True:
                    kind, child, detail = await queue.get()
                    if child.version != version:
                        continue
                    reached = child.stages
                    if kind == "online":
                        return True, {}
                    return False, error(
                        "crashed", f"release {version} exited with status {detail} before it was healthy"
                    )
        except TimeoutError:
            running = self.launcher.child
            if running is not None and running.version == version:
                reached = running.stages
            got = ", ".join(sorted(reached)) or "nothing"
            return False, error("unhealthy", f"release {version} was not healthy within {limit:g} s (hello, "
                                             f"storage, online needed; it reached {got})")  # fmt: skip
        finally:
            self.launcher.events = None
            self.state.trial = None
            await asyncio.to_thread(self.releases.save, self.state)

    def _cannot_read(self, version: str) -> str | None:
        """Why release `version` could not read the shared storage now; None when it can."""
        try:
            schema, oldest = schema_of(self.storage)
        except Exception as exc:
            return f"cannot read the storage's schema: {exc}"
        theirs = self.state.schemas.get(version)
        if oldest and (theirs is None or theirs < oldest):
            return (f"the storage is at schema {schema}, which releases before schema {oldest} cannot read, "
                    f"and release {version} is at schema {theirs if theirs is not None else 'unknown'}")  # fmt: skip
        return None


def _refuse(code: str, message: str) -> dict[str, Any]:
    return {"status": "error", "error": {"code": code, "message": message}}
