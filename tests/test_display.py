"""The station display end to end: the agent process and its web server, a real broker and
central, the serial scanner simulator on a pty, and Debian's Chromium running the page."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from simulators.central import Central, labels_of
from simulators.samples import ret1_label
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker, free_port
from tests.browser import chromium, wait_page
from tests.conftest import ROOT, sim_cmd
from tests.harness import stop_sim
from tests.test_sync_fleet import desired

GREEN, AMBER, RED, BLUE = "rgb(23, 129, 58)", "rgb(242, 169, 0)", "rgb(198, 40, 40)", "rgb(31, 95, 168)"


class Scanner:
    """One long-lived serial scanner simulator, payloads typed from its stdin."""

    def __init__(self, link: Path) -> None:
        self.proc = subprocess.Popen(sim_cmd("serial-scanner", "--link", str(link), "--rate", "0"),
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)  # fmt: skip

    def scan(self, payload: str) -> float:
        """Types one payload; returns the wall-clock time (ms) at which it was handed over."""
        assert self.proc.stdin is not None
        t = time.time() * 1000
        self.proc.stdin.write(payload + "\n")
        self.proc.stdin.flush()
        return t

    def close(self) -> None:
        stop_sim(self.proc)


def start_agent(
    tmp_path: Path, broker: Broker, display_port: int, extra: str = ""
) -> tuple[AgentProcess, Path]:
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}],
                          display_port=display_port, extra=extra)  # fmt: skip
    return AgentProcess(config, tmp_path / "agent.log").start(), link


def station_ready(agent: AgentProcess, page: Any, port: int) -> dict[str, Any]:
    """Waits for the manifest, the page's server and the scanner, opens the page and waits until
    it is connected and the broker online; returns what it shows then."""
    agent.wait_for("manifest.applied", version=1)
    agent.wait_for("display.serving")
    agent.wait_for("scanner.opened")
    page.get(f"http://127.0.0.1:{port}/")
    return wait_page(page, lambda s: s["connected"] == "yes" and "online" in s["broker"], what="connected")


def next_seq(seq: int) -> Any:
    return lambda s: s["seq"] == str(seq)


@pytest.mark.slow
def test_scan_results_show_on_the_page_and_survive_an_agent_restart(tmp_path: Path, broker: Broker) -> None:
    central = Central("127.0.0.1", broker.port, "hel1")
    central.generate(20)
    port = free_port()
    agent, link = start_agent(tmp_path, broker, port)
    scanner = Scanner(link)
    r = central.returns
    try:
        with chromium() as page:
            idle = station_ready(agent, page, port)
            assert idle["outcome"] == "idle" and idle["verdict"] == "READY" and idle["mode"] == "receive"
            assert idle["scanners"] == "scanner s1: ok"
            wait_page(
                page, lambda s: s["outbox"] == "all sent", what="outbox drained"
            )  # a request may be in flight
            assert (
                central.command("dock-07", "status")["data"]["display"]["pages"] == 1
            )  # the admin sees a screen

            typed = scanner.scan(labels_of(r[0])[0])
            s = wait_page(page, next_seq(1), what="scan 1")
            print(f"scan to page: {s['shown_at_ms'] - typed:.0f} ms (typing at 9600 baud included)")
            assert (s["outcome"], s["background"], s["verdict"]) == ("expected", GREEN, "EXPECTED")
            assert s["order"] == r[0]["order_number"]
            assert s["customer"] == r[0]["customer"]["name"]
            item = r[0]["items"][0]
            assert s["items"] == f"{item['qty']} × {item['name']} {item['sku']}"
            assert s["expected"] == "1" and s["hint"] == "Expected return: received"

            scanner.scan(labels_of(r[0])[0])
            s = wait_page(page, next_seq(2), what="scan 2")
            assert (s["outcome"], s["background"], s["duplicate"]) == ("duplicate", AMBER, "1")
            assert s["order"] == r[0]["order_number"]

            scanner.scan(ret1_label(r[1]["return_id"], "SO-1")[:-2] + "AA")  # forged signature
            s = wait_page(page, next_seq(3), what="scan 3")
            assert (s["outcome"], s["background"], s["verdict"]) == ("invalid", RED, "BAD READ")
            assert "signature" in s["hint"] and s["order"] == "" and s["invalid"] == "1"

            hostile = '<img src=x onerror="document.body.remove()">'
            scanner.scan(hostile)
            s = wait_page(page, next_seq(4), what="scan 4")
            assert (s["outcome"], s["background"], s["unknown"]) == ("unknown", RED, "1")
            assert hostile in s["meta"] and s["images"] == 0  # shown as text, never parsed as HTML

            scanner.scan("CMD:MODE:INSPECT")
            s = wait_page(page, next_seq(5), what="scan 5")
            assert (s["outcome"], s["background"], s["mode"]) == ("command", BLUE, "inspect")
            assert s["hint"] == "Mode changed to INSPECT"

            agent.kill()  # SIGKILL: the page must say it lost the agent, not keep a stale green
            wait_page(page, lambda s: s["connected"] == "no", what="page noticing the agent is gone")
            agent.start()
            agent.wait_for("display.serving")
            s = wait_page(page, lambda s: s["connected"] == "yes", timeout=30, what="page reconnecting")
            assert s["seq"] == "5" and s["mode"] == "inspect"  # the last result and counts come from storage
            assert (s["expected"], s["duplicate"], s["invalid"], s["unknown"]) == ("1", "1", "1", "1")
            agent.wait_for("scanner.opened")

            scanner.scan(labels_of(r[2])[1])
            s = wait_page(page, next_seq(6), what="scan after the restart")
            assert (s["outcome"], s["background"], s["order"]) == ("expected", GREEN, r[2]["order_number"])
            assert s["hint"] == "Inspect this return" and s["expected"] == "2"
    finally:
        scanner.close()
        agent.kill()
        central.close()


def get_state(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=5) as reply:
        return json.loads(reply.read())  # type: ignore[no-any-return]


def test_state_document_a_taken_port_and_hot_reconfiguration(tmp_path: Path, broker: Broker) -> None:
    """The JSON behind the page; a display that cannot bind is logged and retried while scans go
    on; the status command says where the page is; a desired config changes it without a restart."""
    central = Central("127.0.0.1", broker.port, "hel1")
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    agent, link = start_agent(tmp_path, broker, port)
    scanner = Scanner(link)
    try:
        failed = agent.wait_for("component.failed", failed_component="display")
        assert f"cannot serve on 127.0.0.1:{port}" in failed["error"]
        agent.wait_for("scanner.opened")
        scanner.scan("CMD:MODE:RESTOCK")
        agent.wait_for("scan.stored", seq=1)
        blocker.close()  # the port comes free: the supervisor's next restart serves it
        agent.wait_for("display.serving", timeout=30)
        doc = get_state(port)
        assert doc["mode"] == "restock" and doc["last"]["seq"] == 1 and doc["last"]["outcome"] == "command"
        assert doc["today"]["counts"]["command"] == 1
        assert doc["station"] == {"site": "hel1", "device": "dock-07", "title": "hel1 / dock-07",
                                  "dim_after_s": 20.0, "language": "en", "sound": True}  # fmt: skip
        assert doc["scanners"] == [{"id": "s1", "type": "serial", "connected": True, "scans": 1}]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
            assert reply.headers["Cache-Control"] == "no-cache" and b"display.js" in reply.read()
        status = central.command("dock-07", "status")
        assert status["data"]["display"] == {"enabled": True, "url": f"http://127.0.0.1:{port}/", "pages": 0}
        assert status["data"]["counters"]["restarts"]["display"] >= 1  # the failed binds
        central.command("dock-07", "set_mode", {"mode": "reject"})
        assert get_state(port)["mode"] == "reject"  # at once, not at the next refresh
        new_port = free_port()
        desired(central, 2, {"display": {"port": new_port, "title": "Dock 7", "dim_after_s": 5}})
        agent.wait_for("display.serving", url=f"http://127.0.0.1:{new_port}/")
        doc = get_state(new_port)
        assert doc["station"]["title"] == "Dock 7" and doc["station"]["dim_after_s"] == 5
        assert doc["last"]["seq"] == 1 and doc["mode"] == "reject"
        with pytest.raises(OSError):
            get_state(port)  # the old address is given up
    finally:
        central.close()
        blocker.close()
        scanner.close()
        agent.kill()
