"""Audible and visible feedback per scan outcome: a printer's buzzer, or a command on the host
(a GPIO stack light, a chime), as `feedback:` in the configuration says.

A scan is already stored when its feedback starts, and feedback never delays or fails one:
buzzer bytes are handed to the printer's worker, which sends them between print jobs (never
inside one) and drops them when they are too old to mean anything; commands run one at a time,
in scan order, so a stack light ends showing the last outcome, each killed at its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable

import structlog

from edge_agent.config import AgentConfig, BuzzerAction, CommandAction
from edge_agent.ports import Printing
from edge_agent.printing.render_escpos import buzzer_bytes
from edge_agent.store.scans import ScanRecord

MAX_PENDING = 16
"""Commands waiting beyond this many are dropped, oldest first: feedback that late is noise."""


class Feedback:
    """Ports: `config` (the running configuration: `feedback`, `device`), `printing` (a buzzer's
    bytes go to its printer's worker)."""

    def __init__(self, config: Callable[[], AgentConfig], printing: Printing) -> None:
        self.name = "feedback"
        self._config = config
        self._printing = printing
        self._pending: deque[tuple[CommandAction, dict[str, str], str]] = deque()
        self._wake = asyncio.Event()
        self._log = structlog.get_logger("edge_agent.feedback").bind(component="feedback")

    def on_scan(self, record: ScanRecord) -> None:
        """Called for each stored scan, on the event loop; returns at once."""
        self._act(record, record.outcome)
        if not record.weigh_pending:
            self.on_weight(record)

    def on_weight(self, record: ScanRecord) -> None:
        """A parcel's weight is known: `weight_light` / `weight_heavy` when it is not what it should be."""
        weight = record.payload.get("weight") or {}
        if weight.get("check") in ("light", "heavy"):
            self._act(record, f"weight_{weight['check']}")

    def _act(self, record: ScanRecord, outcome: str) -> None:
        config = self._config()
        actions = config.feedback.actions(outcome)
        if not actions:
            return
        ret = record.ret or {}
        weight = record.payload.get("weight") or {}
        env = {
            "EDGE_OUTCOME": outcome,
            "EDGE_MODE": record.mode,
            "EDGE_SEQ": str(record.seq),
            "EDGE_EVENT_ID": record.event_id,
            "EDGE_SCANNER": str(record.payload.get("scanner", "")),
            "EDGE_RETURN_ID": str(ret.get("return_id") or ""),
            "EDGE_ORDER_NUMBER": str(ret.get("order_number") or ""),
            "EDGE_DEVICE": config.device.id,
            "EDGE_SITE": config.device.site,
            "EDGE_WEIGHT_G": "" if weight.get("grams") is None else str(weight["grams"]),
            "EDGE_EXPECTED_G": "" if weight.get("expected_g") is None else str(weight["expected_g"]),
            "EDGE_WEIGHT_CHECK": str(weight.get("check") or ""),
        }
        for action in actions:
            if isinstance(action, BuzzerAction):
                self._buzz(action, record)
            else:
                if len(self._pending) >= MAX_PENDING:
                    dropped = self._pending.popleft()
                    self._log.warning("feedback.dropped", argv0=dropped[0].argv[0], event_id=dropped[2])
                self._pending.append((action, env, record.event_id))
                self._wake.set()

    def _buzz(self, action: BuzzerAction, record: ScanRecord) -> None:
        data = buzzer_bytes(action.beeps, action.duration)
        if not self._printing.signal(action.printer, data, f"buzzer-{record.seq}"):
            # removed by a configuration change since
            self._log.warning("feedback.no_printer", printer=action.printer, event_id=record.event_id)

    # --- component -------------------------------------------------------------------------
    async def start(self) -> None:
        pass

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                action, env, event_id = self._pending.popleft()
                await self._run(action, env, event_id)

    async def stop(self) -> None:
        pass

    async def _run(self, action: CommandAction, env: dict[str, str], event_id: str) -> None:
        log = self._log.bind(argv0=action.argv[0], event_id=event_id, outcome=env["EDGE_OUTCOME"])
        t0 = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *action.argv,
                env={**os.environ, **env},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # a kill reaches what the command started, not the agent
            )
        except OSError as exc:
            log.error("feedback.command_failed", error=f"cannot start: {exc.strerror or exc}")
            return
        try:
            async with asyncio.timeout(action.timeout_s):
                _, stderr = await proc.communicate()
        except TimeoutError:
            log.error("feedback.command_timeout", timeout_s=action.timeout_s)
            return
        finally:
            if proc.returncode is None:  # timed out, or the agent is stopping: asyncio's watcher reaps it
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        ms = round((time.monotonic() - t0) * 1000, 1)
        if proc.returncode != 0:
            log.error("feedback.command_failed", exit_code=proc.returncode, ms=ms,
                      stderr=stderr.decode("utf-8", "replace")[-400:])  # fmt: skip
        else:
            log.debug("feedback.command_done", ms=ms)
