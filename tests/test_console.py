"""The operator's console (edge_agent/logs/console.py): on a terminal, a scan is one line no wider
than the terminal; a receipt's close too; everything else key=value. Read off a real agent whose
stderr is a pseudo-terminal of a set width, and off the renderer itself."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from structlog import dev

from edge_agent.logs.console import ConsoleLines
from tests.agentproc import write_config
from tests.broker import Broker
from tests.conftest import ROOT
from tests.harness import type_payloads

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SCAN = {"event": "scan.stored", "timestamp": "2026-12-03T06:30:00.123456Z", "scanner": "s1", "seq": 42,
        "outcome": "expected", "raw": "RET1.K1.AAAA\x1dBBBB", "order_number": "ORD-5678", "return_id": "R-1",
        "latency_us": 1234, "error": None, "event_id": "0193", "mode": "receive"}  # fmt: skip


class Narrow(io.StringIO):
    """A stream whose terminal width is `columns` (os.get_terminal_size reads the fd's)."""

    def __init__(self, columns: int) -> None:
        super().__init__()
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))

    def fileno(self) -> int:
        return self.slave


@pytest.mark.parametrize("columns", [40, 60, 80, 132, 200])
def test_a_scan_is_one_line_within_the_width(columns: int) -> None:
    render = ConsoleLines(Narrow(columns), colors=True)
    for raw in ("RET1.K1.AAAA\x1dBBBB", "X" * 300, ""):
        line = render(None, "info", {**SCAN, "raw": raw})
        plain = ANSI.sub("", line)
        assert "\n" not in line and len(plain) <= columns, (columns, plain)
        assert plain.startswith(time.strftime("%H:%M:%S", time.localtime(1796279400.123456)) + " s1 EXPECTED")
        assert "\x1b[" in line  # the outcome in its colour
        if columns >= 80:
            assert plain.endswith("ORD-5678 1.2 ms #42")
    wide = ANSI.sub("", render(None, "info", SCAN))
    if columns >= 80:
        assert "RET1.K1.AAAA<GS>BBBB" in wide  # a group separator shown, not swallowed


def test_outcomes_differ_in_colour_and_no_colour_off_a_terminal() -> None:
    render = ConsoleLines(Narrow(100), colors=True)
    styles = {o: render(None, "info", {**SCAN, "outcome": o}).split(" s1 ")[1][:5]
              for o in ("expected", "duplicate", "unknown", "invalid")}  # fmt: skip
    assert len(set(styles.values())) == 4
    plain = ConsoleLines(Narrow(100), colors=False)(None, "info", SCAN)
    assert "\x1b" not in plain and " s1 EXPECTED " in plain


def test_a_bad_read_shows_why_and_other_events_stay_key_value() -> None:
    render = ConsoleLines(Narrow(100), colors=False)
    bad = render(None, "info", {**SCAN, "outcome": "invalid", "order_number": None, "return_id": None,
                                "error": "check digit mismatch", "raw": "4006381333932"})  # fmt: skip
    assert " s1 INVALID    4006381333932 (check digit mismatch) 1.2 ms #42" in bad
    other = render(
        None, "info", {"event": "mqtt.connected", "timestamp": SCAN["timestamp"], "broker": "b:1883"}
    )
    assert "mqtt.connected" in other and "broker=b:1883" in other
    assert other.startswith(time.strftime("%H:%M:%S", time.localtime(1796279400)))
    closed = render(None, "info", {"event": "receipt.closed", "timestamp": SCAN["timestamp"], "return_id": "R-1",
                                   "order_number": "ORD-1", "verdict": "short", "received": 2, "expected": 3,
                                   "extra": 1, "closed_by": "done", "receipt_seq": 7})  # fmt: skip
    assert closed.endswith("receipt SHORT      ORD-1 2/3 items +1 extra by done #7")


@pytest.mark.parametrize("columns", [40, 80, 132])
def test_a_parcels_weight_is_one_line_and_a_light_one_is_red(columns: int) -> None:
    render = ConsoleLines(Narrow(columns), colors=True)
    weighed = {"event": "scan.weighed", "timestamp": SCAN["timestamp"], "scanner": "s1", "seq": 42,
               "grams": 120.0, "expected_g": 760, "check": "light", "waited_ms": 97, "event_id": "0193"}  # fmt: skip
    light = render(None, "info", weighed)
    plain = ANSI.sub("", light)
    assert "\n" not in light and len(plain) <= columns, plain
    assert f"{dev.RED}LIGHT" in light  # the outcome's colour: a problem
    if columns >= 132:
        assert plain.endswith(" s1 LIGHT      120 g, expected 760 g: check the contents (waited 97 ms) #42")
    elif columns == 80:  # the wait gives way first
        assert plain.endswith(" s1 LIGHT      120 g, expected 760 g: check the contents #42")
    assert plain.endswith("#42")
    ok = ANSI.sub("", render(None, "info", {**weighed, "grams": 771.4, "check": "ok"}))
    unknown = ANSI.sub(
        "", render(None, "info", {**weighed, "grams": None, "expected_g": None, "check": "unknown"})
    )
    if columns >= 80:
        assert " s1 WEIGHT OK  771 g, expected 760 g (waited 97 ms) #42" in ok
        assert " s1 WEIGHT ?   no stable weight (waited 97 ms) #42" in unknown


def test_the_agent_on_a_terminal_prints_a_line_a_scan(tmp_path: Path, broker: Broker) -> None:
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}])
    config.write_text(config.read_text().replace("log: {format: json}", "log: {format: auto}"))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 72, 0, 0))
    agent = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "run", "-c", str(config)],
                             stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=ROOT)  # fmt: skip
    os.close(slave)
    out = b""
    try:
        payloads = ["4006381333931", "NOT-A-LABEL-" + "Z" * 80, "RR123456785SE"]
        type_payloads(link, payloads)
        deadline = time.monotonic() + 20
        while out.count(b"#") < 3 and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 65536)
    finally:
        agent.terminate()
        agent.wait(timeout=20)
        os.close(master)
    lines = [ANSI.sub("", line) for line in out.decode("utf-8", "replace").splitlines()]
    scans = [line for line in lines if re.search(r" s1 [A-Z_]+ +.* #\d+$", line)]
    assert len(scans) == 3, lines
    assert all(len(line) <= 72 for line in scans)
    assert [line.split()[2] for line in scans] == ["UNKNOWN"] * 3  # no manifest yet
    shown = [line.split()[3] for line in scans]
    assert shown[0] == "4006381333931" and shown[2] == "RR123456785SE"
    assert re.fullmatch(r"NOT-A-LABEL-Z{10,}…", shown[1])  # the long payload cut to fit, marked
    assert [line.rsplit(" ", 1)[1] for line in scans] == ["#1", "#2", "#3"]
    assert any("mqtt.connected" in line for line in lines)  # the rest stays key=value
