"""What every end-to-end test starts: the real broker (tests/broker.py), the agent as a process
(tests/agentproc.py), the simulated central system, printer and scanners. The fixtures in
conftest.py hand these out and clean them up; plain helpers live here."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.broker import free_port
from tests.conftest import ROOT, sim_cmd


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_until_async(predicate: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
    """`wait_until` inside an event loop: polls without blocking the loop the test drives."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def stop_sim(proc: subprocess.Popen[Any]) -> None:
    """Stop a simulator as a person unplugs a device: SIGTERM, on which it removes its pty's link
    (SIGKILL would leave the link naming a pty number that the kernel soon gives another test's
    simulator, and an agent still reopening the link would read that one). SIGKILL only if it
    does not go."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def type_payloads(link: Path, payloads: list[str], rate: float = 20) -> None:
    """Type payloads into a serial scanner simulator on `link` (a real pty), then let it go."""
    subprocess.run(sim_cmd("serial-scanner", "--link", str(link), "--rate", str(rate), *payloads),
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=120)  # fmt: skip


class SimPrinter:
    """`edge-sim printer` as a process on a free TCP port, with its control port for faults."""

    def __init__(self, lang: str, tmp: Path, extra: tuple[str, ...] = ()) -> None:
        self.port, self.control_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] = subprocess.Popen(
            sim_cmd("printer", "--lang", lang, "--port", str(self.port), "--control-port", str(self.control_port),
                    "--jobs-dir", str(tmp / "jobs"), *extra),
            stdout=open(tmp / "printer-sim.log", "ab"), stdin=subprocess.DEVNULL, cwd=ROOT,  # noqa: SIM115
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.control_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)

    def control(self, command: str) -> dict[str, Any]:
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as s:
            s.sendall(command.encode() + b"\n")
            result: dict[str, Any] = json.loads(s.makefile().readline())
            return result

    def close(self) -> None:
        stop_sim(self.proc)


async def collect_scans(driver: Any, want: int, timeout: float = 20, settle: float = 0.3) -> list[bytes]:
    """Read a scanner driver's scans until `want` arrived (or `timeout`), then `settle` seconds
    more (so an extra, unwanted scan would show), and close the driver."""
    import asyncio

    got: list[bytes] = []

    async def reader() -> None:
        async for raw in driver.scans():
            got.append(raw.data)

    task = asyncio.create_task(reader())
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(settle)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await driver.close()
    return got


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children first), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found: list[int] = []
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - set(found)
        found.extend(sorted(frontier))
    return found
