"""The document renderer: `pages.py` in a worker process of its own, with an address-space limit
and a deadline per call, so that neither a hostile PDF nor a slow one reaches the event loop, the
agent's memory, or a scan. One process, kept warm between documents and started again after it
died or was killed.

A document's deadline (`render_timeout_s`) is its own: a fresh worker is first asked for nothing
(`_started`), under a start-up deadline of its own, so that the seconds a spawned interpreter spends
importing PDFium and Pillow on a loaded Pi are not taken from the first document after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import structlog

from edge_agent.printing.documents import DocumentError
from edge_agent.printing.documents.pages import Profile, count_pages, render

T = TypeVar("T")
PR_SET_PDEATHSIG = 1
START_TIMEOUT_S = 30.0
"""Seconds a new worker has to start and import the renderer before it counts as broken."""


def _started() -> int:
    return os.getpid()  # by now the worker has imported this module, and pages.py with it


def _limit(memory_mb: int) -> None:
    """In the worker, before anything is parsed: it dies with the agent (a `kill -9` of the agent
    must not leave a renderer behind), the address space it may use, and no core dumps."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the agent died before the line above ran
        os._exit(1)
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError):
        os.nice(5)  # below the agent: a render never outbids a scan for the CPU


class DocumentRenderer:
    """Ports: `limits()` gives (render_timeout_s, render_memory_mb) as configured now."""

    def __init__(self, limits: Callable[[], tuple[float, int]]) -> None:
        self._limits = limits
        self._pool: ProcessPoolExecutor | None = None
        self._answered: ProcessPoolExecutor | None = None  # the pool whose worker has started
        self._memory_mb = 0
        self.restarts = 0
        self._log = structlog.get_logger("edge_agent.printing").bind(component="documents")

    def _ensure(self, memory_mb: int) -> ProcessPoolExecutor:
        if self._pool is None or memory_mb != self._memory_mb:
            self.close()
            # spawn: a clean process, not a fork of a threaded agent mid-commit, and a child of the
            # agent itself (a forkserver in between would outlive a killed agent)
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(1, mp_context=context, initializer=_limit, initargs=(memory_mb,))
            self._memory_mb = memory_mb
        return self._pool

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        timeout_s, memory_mb = self._limits()
        pool = await self._start(memory_mb)
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except TimeoutError:
            self._kill("timeout")
            raise DocumentError(f"the document was not rendered within {timeout_s:g} s") from None
        except BrokenProcessPool:
            self._kill("died")
            raise DocumentError(
                f"the document could not be rendered within {memory_mb} MB (its renderer died)"
            ) from None
        except MemoryError:
            raise DocumentError(f"the document needs more than {memory_mb} MB to render") from None

    async def _start(self, memory_mb: int) -> ProcessPoolExecutor:
        pool = self._ensure(memory_mb)
        if self._answered is pool:
            return pool
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                await asyncio.get_running_loop().run_in_executor(pool, _started)
        except (TimeoutError, BrokenProcessPool, MemoryError):
            self._kill("start")
            raise DocumentError(
                f"the renderer did not start within {START_TIMEOUT_S:g} s and {memory_mb} MB"
            ) from None
        self._answered = pool
        return pool

    def _kill(self, why: str) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        self.restarts += 1
        self._log.warning("documents.renderer_restarted", why=why, restarts=self.restarts)
        for process in list(getattr(pool, "_processes", {}).values()):
            with contextlib.suppress(Exception):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    async def check(self, kind: str, data: bytes, max_pages: int) -> int:
        """The document's pages; raises DocumentError naming what is wrong with it."""
        return await self._call(count_pages, kind, data, max_pages)

    async def render(self, kind: str, data: bytes, profile: Profile, copies: int) -> bytes:
        """The printer's bytes for the document; raises DocumentError."""
        return await self._call(render, kind, data, profile, copies)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
