"""Per-outcome feedback with the agent process: host commands really run, the buzzer really
reaches the ESC/POS printer simulator over TCP, and neither holds up or loses a scan."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.central import Central, labels_of
from tests.agentproc import write_config
from tests.broker import Broker
from tests.conftest import ROOT
from tests.harness import wait_until
from tests.test_display import Scanner
from tests.test_printing_jobs import ROOT_T, job, states


@pytest.fixture
def scanners() -> Iterator[Callable[[Path], Scanner]]:
    """Serial scanner simulators typing from stdin, killed at the test's end."""
    made: list[Scanner] = []

    def make(link: Path) -> Scanner:
        made.append(Scanner(link))
        return made[-1]

    yield make
    for scanner in made:
        scanner.close()


def test_commands_run_in_scan_order_with_the_scan_in_their_environment(
    tmp_path: Path, broker: Broker, central: Central, agents: Any, scanners: Any
) -> None:
    central.generate(5)
    out = tmp_path / "light.txt"
    record = [
        "sh",
        "-c",
        f'echo "$EDGE_SEQ $EDGE_OUTCOME $EDGE_MODE $EDGE_ORDER_NUMBER $EDGE_SCANNER" >> {out}',
    ]
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}], extra=(
        "feedback:\n"
        f"  expected: [{{type: command, argv: {json.dumps(record)}}}]\n"
        f"  invalid: [{{type: command, argv: {json.dumps(record)}}}]\n"
        "  unknown:\n"
        "    - {type: command, argv: [sleep, '30'], timeout_s: 0.5}\n"
        f"    - {{type: command, argv: {json.dumps(record)}}}\n"
        "  duplicate: [{type: command, argv: [/nonexistent/stack-light]}]\n"))  # fmt: skip
    agent = agents(config)
    scanner = scanners(link)
    agent.wait_for("manifest.applied", version=1)
    agent.wait_for("scanner.opened")
    r = central.returns[0]
    for payload in [labels_of(r)[0], "PARCEL-1", labels_of(r)[0], "RR123456780SE"]:
        scanner.scan(payload)
    agent.wait_for("scan.stored", seq=4)
    timeout = agent.wait_for("feedback.command_timeout", outcome="unknown")
    assert timeout["argv0"] == "sleep" and timeout["timeout_s"] == 0.5
    failed = agent.wait_for("feedback.command_failed", outcome="duplicate")
    assert "cannot start" in failed["error"] and failed["argv0"] == "/nonexistent/stack-light"
    wait_until(lambda: out.exists() and len(out.read_text().splitlines()) == 3, what="three commands")
    assert out.read_text().splitlines() == [
        f"1 expected receive {r['order_number']} s1",
        "2 unknown receive  s1",  # after the sleep was killed: one at a time, in scan order
        "4 invalid receive  s1",
    ]


@pytest.mark.parametrize("transport", ["tcp", "serial"])
def test_buzzer_sounds_between_print_jobs_never_inside_one(
    tmp_path: Path,
    broker: Broker,
    central: Central,
    agents: Any,
    scanners: Any,
    printers: Any,
    transport: str,
) -> None:
    """On a serial line a buzzer sent inside a job would corrupt it: every job must arrive whole."""
    if transport == "tcp":
        sim = printers("escpos")
        printer = f"{{id: p2, language: escpos, transport: tcp, host: 127.0.0.1, port: {sim.port}}}"
    else:
        sim = printers("escpos", ("--pty", str(tmp_path / "p2")))
        printer = (
            f"{{id: p2, language: escpos, transport: serial, port: {tmp_path / 'p2'}, baudrate: 115200}}"
        )
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}], extra=(
        "printers:\n"
        f"  - {printer}\n"
        "printing: {poll_interval_s: 0.3, status_timeout_s: 1.0}\n"
        "feedback:\n"
        "  invalid: [{type: buzzer, printer: p2, beeps: 3, duration: 2}]\n"
        "  unknown: [{type: buzzer, printer: p2, beeps: 1, duration: 1}]\n"))  # fmt: skip
    agent = agents(config)
    scanner = scanners(link)
    agent.wait_for("printer.status", printer="p2")
    agent.wait_for("scanner.opened")
    body = b"\x1b@" + b"RECEIPT LINE\n" * 20000 + b"\x1dV\x00"  # a long job, to be sent while scans come
    for i in range(6):
        job(central, {"job_id": f"J-{i}", "printer": "p2", "escpos_b64": base64.b64encode(body).decode()})
    for payload in ["RR123456780SE", "PARCEL-2", "RR123456780SE"]:
        scanner.scan(payload)
        time.sleep(0.05)
    db = tmp_path / "state" / "agent.db"
    wait_until(lambda: set(states(db).values()) == {"printed"} and len(states(db)) == 6, what="6 printed")
    wait_until(lambda: sim.control("stats")["beeps"] == 7, what="7 beeps")
    stats = sim.control("stats")
    assert stats["jobs"] == 6 and stats["dropped"] == 0  # every job whole: no buzzer bytes inside
    sent = [json.loads(line) for line in (tmp_path / "printer-sim.log").read_text().splitlines()]
    assert [e["beeps"] for e in sent if e["event"] == "buzzer"] == [[3], [1], [3]]
    assert all(f.read_bytes() == body for f in (tmp_path / "jobs").glob("job-*"))
    assert {t for t, _ in central.messages if t.endswith("/event/scan")} == {f"{ROOT_T}/event/scan"}


def test_item_outcomes_drive_the_stack_light_script(
    tmp_path: Path, broker: Broker, central: Central, agents: Any, scanners: Any
) -> None:
    """config/feedback/stacklight.sh as shipped, on the item outcomes of a receipt: green for a
    counted item, red for one the return does not hold (its GPIO stand-in is a state file)."""
    central.generate(5)
    state = tmp_path / "lamp"
    script = str(ROOT / "config" / "feedback" / "stacklight.sh")
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}], extra=(
        "feedback:\n"
        f"  item: [{{type: command, argv: [env, 'STACKLIGHT_STATE={state}', {script}]}}]\n"
        f"  extra_item: [{{type: command, argv: [env, 'STACKLIGHT_STATE={state}', {script}]}}]\n"))  # fmt: skip
    agent = agents(config)
    scanner = scanners(link)
    agent.wait_for("manifest.applied", version=1)
    agent.wait_for("scanner.opened")
    r = central.returns[0]
    scanner.scan(labels_of(r)[0])  # opens its receipt
    scanner.scan("]E0" + r["items"][0]["gtin"])
    wait_until(
        lambda: state.exists() and state.read_text().startswith("green seq=2"), what="green for the item"
    )
    scanner.scan("]E0" + central.returns[1]["items"][0]["gtin"])  # another return's item
    wait_until(
        lambda: state.exists() and state.read_text().startswith("red seq=3"), what="red for the extra item"
    )
