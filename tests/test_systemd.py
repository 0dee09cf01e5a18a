"""systemd integration: the notify protocol on a socket the test reads, the unit and udev files."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_agent.app import Agent
from edge_agent.config import parse_config
from tests.agentproc import write_config
from tests.broker import Broker
from tests.conftest import ROOT


def read_datagrams(sock: socket.socket, seconds: float) -> list[tuple[float, str]]:
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            out.append((time.monotonic(), sock.recv(4096).decode()))
        except TimeoutError:
            break
    return out


def test_agent_process_reports_ready_watchdog_status_and_stopping(tmp_path: Path, broker: Broker) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    config = write_config(tmp_path, broker.port)
    env = {**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "run", "-c", str(config)], env=env, cwd=ROOT,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        messages = read_datagrams(sock, 4.0)
        texts = [m for _, m in messages]
        assert any("READY=1" in m for m in texts), texts
        ready = next(m for m in texts if "READY=1" in m)
        assert "STATUS=" in ready and "scanners" in ready
        pings = [t for t, m in messages if m == "WATCHDOG=1"]
        assert len(pings) >= 4  # every 0.5 s: half of WatchdogSec
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert max(gaps) < 1.0  # never as late as WatchdogSec, when systemd would kill the agent
        proc.terminate()
        proc.wait(timeout=20)
        assert any("STOPPING=1" in m for _, m in read_datagrams(sock, 1.0))
    finally:
        proc.kill()
        sock.close()


def test_watchdog_pings_stop_while_the_event_loop_is_blocked(tmp_path: Path) -> None:
    path = tmp_path / "n.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    received: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: received.extend(read_datagrams(sock, 6.0)), daemon=True)
    reader.start()  # reads as systemd does, from outside the agent's event loop
    os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"] = str(path), "200000"
    config = parse_config({"device": {"id": "d1", "site": "s1"}, "mqtt": {"host": "127.0.0.1", "port": 1},
                           "storage": {"path": str(tmp_path / "state")}, "log": {"format": "json"}})  # fmt: skip

    async def main() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(Agent(config).run(stop))
        await asyncio.sleep(1.0)
        time.sleep(1.5)  # the event loop is blocked: nothing else runs, no ping may leave
        await asyncio.sleep(1.0)
        stop.set()
        await runner

    try:
        asyncio.run(main())
        reader.join()
        pings = [t for t, m in received if m == "WATCHDOG=1"]
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
        sock.close()
    gaps = sorted(b - a for a, b in itertools.pairwise(pings))
    assert gaps[-1] > 1.4  # the blocked stretch
    assert gaps[len(gaps) // 2] < 0.3  # otherwise every 0.1 s


def test_unit_file_verifies_and_asks_for_what_the_agent_needs() -> None:
    unit = (ROOT / "systemd" / "edge-agent.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "StateDirectory=edge-agent",
        "SupplementaryGroups=input dialout lp",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "DevicePolicy=closed",
        "DeviceAllow=char-input rw",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    ):
        assert line in unit, line  # fmt: skip
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: .ci/run installs systemd")
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(ROOT / "systemd" / "edge-agent.service")],
                            capture_output=True, text=True)  # fmt: skip
    problems = [line for line in result.stderr.splitlines()
                if "edge-agent.service" in line and "Command /opt/edge-agent" not in line
                and "not executable" not in line and "No such file" not in line]  # fmt: skip
    assert problems == [], result.stderr


def test_udev_rules_give_stable_names_and_never_0666() -> None:
    rules = [line for line in (ROOT / "systemd" / "99-edge-agent.rules").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]  # fmt: skip
    assert rules
    for line in rules:
        assert "0666" not in line and "0777" not in line
        assert re.search(r'SYMLINK\+="edge-agent/[a-z0-9-]+"', line), line
        assert re.search(r'GROUP="(input|dialout|lp)"', line) and 'MODE="0660"' in line, line
        assert re.search(r'ATTRS\{idVendor\}=="[0-9a-f]{4}"', line) and "ATTRS{idProduct}" in line, line


def test_kiosk_unit_verifies_and_opens_the_display() -> None:
    path = ROOT / "systemd" / "edge-display-kiosk.service"
    unit = path.read_text()
    assert "--kiosk" in unit and "http://127.0.0.1:8080/" in unit and "After=edge-agent.service" in unit
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True
    )
    # cage, chromium and the kiosk user exist on a station, not on this machine
    problems = [line for line in result.stderr.splitlines()
                if "edge-display-kiosk.service" in line and "not executable" not in line
                and "No such file" not in line and "edge-kiosk" not in line]  # fmt: skip
    assert problems == [], result.stderr


@pytest.mark.slow
def test_launcher_forwards_ready_pings_the_watchdog_and_restarts_a_hung_agent(
    tmp_path: Path, broker: Broker
) -> None:
    """systemd talks to the launcher: READY is the agent's, forwarded once; WATCHDOG comes from the
    launcher's own loop, also while the agent is frozen (SIGSTOP), which the launcher kills and
    starts again once its pings have been missing for WatchdogSec; STOPPING on SIGTERM."""
    import json

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    config = write_config(tmp_path, broker.port, extra=f"update: {{releases_dir: {tmp_path / 'releases'}}}\n")
    env = {**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"}
    log = tmp_path / "launch.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "launch", "-c", str(config)], env=env,
                                cwd=ROOT, stderr=err)  # fmt: skip

    def records() -> list[dict[str, object]]:
        return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]

    try:
        messages = read_datagrams(sock, 5.0)
        texts = [m for _, m in messages]
        assert sum("READY=1" in m for m in texts) == 1, texts
        assert any(m.startswith("STATUS=release ") and "scanners" in m for m in texts), texts
        children = [
            r["pid"]
            for r in records()
            if r.get("event") == "agent.started" and r.get("component") == "launcher"
        ]
        assert len(children) == 1
        os.kill(int(str(children[0])), signal.SIGSTOP)  # hung: its loop no longer turns
        frozen = read_datagrams(sock, 6.0)
        pings = [t for t, m in frozen if m == "WATCHDOG=1"]
        # pinged every 0.5 s; systemd would kill the service only after 2 s (WATCHDOG_USEC) without one
        assert len(pings) >= 6 and max(b - a for a, b in itertools.pairwise(pings)) < 2.0
        hung = [r for r in records() if r.get("event") == "agent.hung"]
        assert hung and hung[0]["release"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            started = [
                r for r in records() if r.get("event") == "agent.started" and r.get("component") == "launcher"
            ]
            if len(started) == 2:
                break
            time.sleep(0.1)
        assert len(started) == 2 and started[1]["pid"] != children[0]
        assert sum("READY=1" in m for _, m in read_datagrams(sock, 2.0)) == 0  # told once only
        proc.terminate()
        assert proc.wait(timeout=40) == 0
        assert any("STOPPING=1" in m for _, m in read_datagrams(sock, 1.0))
        stopped = [
            r for r in records() if r.get("event") == "agent.stopped" and r.get("component") == "launcher"
        ]
        assert stopped and stopped[-1]["code"] == 0  # the agent itself stopped cleanly, by the launcher
    finally:
        proc.kill()
        sock.close()
