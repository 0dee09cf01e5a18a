"""`edge-sim scale` for each protocol as a real process on a real pty or FIFO, read the way a
driver will read it (pyserial on the pty, os.read on the FIFO) and parsed by drivers/scales/:
its replies are the protocol's to the byte, and its faults arrive on command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import serial

from drivers.scales.continuous import ContinuousParser
from drivers.scales.hidpos import ReportReader
from drivers.scales.reading import Reading
from drivers.scales.sics import WEIGH_NOW, WEIGH_STABLE, SicsParser
from drivers.scales.toledo8217 import WEIGH, Toledo8217Parser
from tests.conftest import ROOT, sim_cmd
from tests.harness import stop_sim, wait_until


@contextmanager
def scale(tmp_path: Path, protocol: str, *extra: str) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    path = tmp_path / ("scale.reports" if protocol == "hid" else "scale")
    where = ["--fifo", str(path)] if protocol == "hid" else ["--link", str(path)]
    proc = subprocess.Popen(sim_cmd("scale", "--protocol", protocol, *where, "--settle-s", "0.3", *extra),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["event"] == "ready"
    try:
        yield proc, path
    finally:
        stop_sim(proc)


def command(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    while json.loads(proc.stdout.readline())["event"] != "done":  # `returned` and the like come between
        pass


def ask(port: serial.Serial, parser: Any, request: bytes, timeout: float = 2.0) -> Reading:
    port.write(request)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readings = parser.feed(port.read(64))
        if readings:
            return readings[-1]  # type: ignore[no-any-return]
    raise AssertionError(f"no reply to {request!r}")


def listen(
    read: Callable[[], bytes], parser: Any, want: Callable[[Reading], bool], timeout: float = 3.0
) -> Reading:
    deadline = time.monotonic() + timeout
    seen: list[Reading] = []
    while time.monotonic() < deadline:
        for reading in parser.feed(read()):
            if want(reading):
                return reading
            seen.append(reading)
    raise AssertionError(f"no such reading; the last ones: {seen[-5:]}")


def test_sics_on_a_pty(tmp_path: Path) -> None:
    with scale(tmp_path, "sics") as (proc, link), serial.Serial(str(link), 9600, timeout=0.1) as port:
        parser = SicsParser()
        command(proc, "!weight 950")
        moving = ask(port, parser, WEIGH_NOW)
        assert moving.state == "motion" and moving.detail.startswith("S D") and moving.grams != 950.0
        assert ask(port, parser, WEIGH_STABLE).detail.startswith("S I")  # cannot settle yet
        time.sleep(0.4)
        stable = ask(port, parser, WEIGH_NOW)
        assert (stable.state, stable.grams, stable.stable, stable.detail) == (
            "ok",
            950.0,
            True,
            "S S     950.00 g",
        )
        port.write(b"XYZ\r\n")
        assert listen(lambda: port.read(64), parser, lambda r: r.state == "error").detail.startswith("ES")
        command(proc, "!overload")
        assert ask(port, parser, WEIGH_NOW).state == "overload"
        command(proc, "!underload")
        assert ask(port, parser, WEIGH_NOW).state == "underload"


def test_a_timed_motion_outlasts_a_weight_placed_during_it(tmp_path: Path) -> None:
    """`!motion 2` then `!weight 900`: the pan swings for the 2 s, not the 0.3 s a weight takes to
    settle (tests/test_scales.py relies on it to scan a parcel before it settles, even when slow);
    `!motion` without seconds ends with the next weight."""
    with scale(tmp_path, "sics") as (proc, link), serial.Serial(str(link), 9600, timeout=0.1) as port:
        parser = SicsParser()
        command(proc, "!motion 2")
        started = time.monotonic()
        command(proc, "!weight 900")
        time.sleep(0.6)
        assert ask(port, parser, WEIGH_STABLE).detail.startswith("S I")
        assert time.monotonic() - started < 2  # the reply came inside the motion, so it means something
        while not (reading := ask(port, parser, WEIGH_NOW)).stable and time.monotonic() - started < 5:
            time.sleep(0.05)
        assert reading.stable and reading.grams == 900.0 and time.monotonic() - started >= 2
        command(proc, "!motion")
        command(proc, "!weight 950")
        time.sleep(0.4)
        reading = ask(port, parser, WEIGH_NOW)
        assert reading.stable and reading.grams == 950.0


def test_sics_in_kilograms_bytes_as_the_manual_lays_them_out(tmp_path: Path) -> None:
    with (
        scale(tmp_path, "sics", "--unit", "kg") as (proc, link),
        serial.Serial(str(link), 9600, timeout=0.2) as port,
    ):
        port.read(64)  # the power-on I4 line
        command(proc, "!weight 1234")
        time.sleep(0.4)
        port.write(b"SI\r\n")
        reply = b""
        deadline = time.monotonic() + 2
        while not reply.endswith(b"\r\n") and time.monotonic() < deadline:
            reply += port.read(64)
        assert reply == b"S S      1.234 kg\r\n"  # 10-character weight field, right-aligned


def test_toledo_8217_on_a_pty(tmp_path: Path) -> None:
    with (
        scale(tmp_path, "toledo8217") as (proc, link),
        serial.Serial(str(link), 9600, bytesize=7, parity="E", timeout=0.1) as port,
    ):
        parser = Toledo8217Parser()
        command(proc, "!weight 950")
        assert ask(port, parser, WEIGH).state == "motion"
        time.sleep(0.4)
        port.write(WEIGH)
        time.sleep(0.2)
        raw = port.read(64)
        assert raw == b"\x02" + b"00.950" + b"\r"
        assert parser.feed(raw)[0].grams == 950.0
        command(proc, "!overload")
        assert ask(port, parser, WEIGH).state == "overload"
        command(proc, "!underload")
        assert ask(port, parser, WEIGH).state == "underload"


def test_continuous_on_a_pty_and_unplugged(tmp_path: Path) -> None:
    with scale(tmp_path, "continuous") as (proc, link):
        parser = ContinuousParser()
        with serial.Serial(str(link), 9600, timeout=0.1) as port:
            command(proc, "!weight 2500")
            assert listen(lambda: port.read(64), parser, lambda r: r.state == "motion").grams != 2500.0
            stable = listen(lambda: port.read(64), parser, lambda r: r.stable)
            assert stable.grams == 2500.0 and stable.detail == "ST,GS,+  2.500kg"
            command(proc, "!overload")
            assert listen(lambda: port.read(64), parser, lambda r: r.state == "overload").grams is None
            command(proc, "!unplug 0.5")
            wait_until(lambda: not link.exists(), what="the port gone")
        wait_until(link.exists, what="the port back")
        command(proc, "!weight 10")
        with serial.Serial(str(link), 9600, timeout=0.1) as port:
            assert listen(lambda: port.read(64), ContinuousParser(), lambda r: r.stable).grams == 10.0


def test_hid_reports_into_a_fifo(tmp_path: Path) -> None:
    with scale(tmp_path, "hid") as (proc, fifo):
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)

        def read() -> bytes:
            time.sleep(0.02)
            try:
                return os.read(fd, 600)
            except BlockingIOError:
                return b""

        try:
            reader = ReportReader()
            assert listen(read, reader, lambda r: r.stable).grams == 0.0  # stable at zero
            command(proc, "!weight 1178")
            assert listen(read, reader, lambda r: r.state == "motion").grams is not None
            assert listen(read, reader, lambda r: r.stable and r.grams == 1178.0).state == "ok"
            command(proc, "!overload")
            assert listen(read, reader, lambda r: r.state == "overload").grams is None
            command(proc, "!underload")
            assert listen(read, reader, lambda r: r.state == "underload").grams is None
        finally:
            os.close(fd)


@pytest.mark.parametrize(
    "signals",
    [(signal.SIGTERM,), (signal.SIGHUP,), (signal.SIGINT, signal.SIGTERM)],
    ids=["SIGTERM", "SIGHUP", "Ctrl-C-in-the-demo"],  # Ctrl-C reaches the group, then the demo's SIGTERM
)
@pytest.mark.parametrize(
    "kind",
    [
        ("scale", "--protocol", "sics", "--stay", "--link"),
        ("serial-scanner", "--rate", "1", *[f"P-{i}" for i in range(100)], "--no-wait", "--link"),
        ("printer", "--lang", "zpl", "--pty"),
    ],
)
def test_a_simulator_stopped_by_a_signal_takes_its_pty_link_with_it(
    tmp_path: Path, kind: tuple[str, ...], signals: tuple[int, ...]
) -> None:
    """Left behind, a link names a pty number the kernel gives the next pty opened on the
    machine, and an agent still reopening it reads another program's device: in a full test run
    one test's agent took the scans another test typed."""
    link = tmp_path / "device"
    proc = subprocess.Popen(sim_cmd(*kind, str(link)), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=ROOT)  # fmt: skip
    try:
        wait_until(lambda: link.is_symlink() and Path(os.readlink(link)).exists(), what="the pty's link")
        time.sleep(0.3)  # in its loop
        for signum in signals:
            proc.send_signal(signum)
        assert proc.wait(timeout=10) == 0
        assert not link.is_symlink()
        assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
