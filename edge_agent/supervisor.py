"""Runs the agent's components and keeps them running.

Theory of operation: each component is started, run and stopped inside its own named task.
When `run()` raises, the failure is logged with the component's name and the component is
stopped and started again after a jittered backoff; the other components go on untouched.
Cancellation (the agent is stopping) stops every component once and ends the tasks.
"""

from __future__ import annotations

import asyncio
import random
from typing import Protocol

import structlog


class Component(Protocol):
    """A part of the daemon. The constructor only stores dependencies."""

    name: str

    async def start(self) -> None:
        """Acquire what the component needs; quick, no long waits."""

    async def run(self) -> None:
        """The component's work, until cancelled."""

    async def stop(self) -> None:
        """Release everything `start()` acquired; safe to call after a failed start."""


class Supervisor:
    def __init__(self, restart_initial_s: float = 0.5, restart_max_s: float = 30.0) -> None:
        self._initial = restart_initial_s
        self._max = restart_max_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._components: dict[str, Component] = {}
        self.restarts: dict[str, int] = {}
        self._log = structlog.get_logger("edge_agent.supervisor").bind(component="supervisor")

    @property
    def components(self) -> dict[str, Component]:
        return dict(self._components)

    def add(self, component: Component) -> None:
        if component.name in self._tasks:
            raise ValueError(f"component {component.name!r} is already running")
        self._components[component.name] = component
        self.restarts.setdefault(component.name, 0)
        self._tasks[component.name] = asyncio.create_task(self._supervise(component), name=component.name)

    async def remove(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        self._components.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def stop_all(self) -> None:
        for name in list(self._tasks)[::-1]:
            await self.remove(name)

    async def _supervise(self, component: Component) -> None:
        delay = self._initial
        log = self._log.bind(failed_component=component.name)
        while True:
            try:
                await component.start()
                await component.run()
                log.warning("component.returned")
            except asyncio.CancelledError:
                await self._stop(component)
                raise
            except Exception as exc:
                log.exception("component.failed", error=repr(exc))
            await self._stop(component)
            self.restarts[component.name] = self.restarts.get(component.name, 0) + 1
            wait = delay * random.uniform(0.8, 1.2)
            log.info("component.restarting", delay_s=round(wait, 2), restarts=self.restarts[component.name])
            await asyncio.sleep(wait)
            delay = min(self._max, delay * 2)

    async def _stop(self, component: Component) -> None:
        try:
            await asyncio.shield(component.stop())
        except Exception as exc:
            self._log.exception("component.stop_failed", failed_component=component.name, error=repr(exc))
